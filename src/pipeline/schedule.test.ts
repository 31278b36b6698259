import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { planSchedule, runSchedule, type ScheduleImage } from './schedule.js';

const img = (name: string, needs: string[] = []): ScheduleImage => ({
  name,
  needs,
  file: `images/${name}/image.yaml`,
});

/** A runner that records which host ran what, when, and checks one build per host at a time. */
function recordingRunner(durations: Record<string, number>, fail: string[] = []) {
  const events: { t: number; ev: 'start' | 'end'; host: string; image: string }[] = [];
  const busy = new Set<string>();
  const t0 = Date.now();
  let overlap = false;
  const run = async (host: { name: string }, image: string) => {
    if (busy.has(host.name)) overlap = true;
    busy.add(host.name);
    events.push({ t: Date.now() - t0, ev: 'start', host: host.name, image });
    await new Promise((r) => setTimeout(r, durations[image] ?? 5));
    events.push({ t: Date.now() - t0, ev: 'end', host: host.name, image });
    busy.delete(host.name);
    if (fail.includes(image)) throw new Error(`${image} broke`);
  };
  return { run, events, overlap: () => overlap };
}

describe('planSchedule', () => {
  it('puts every image after what it needs, alphabetical among equals', () => {
    expect(
      planSchedule([img('usb-installer', ['debian12-base']), img('rocky8-base'), img('debian12-base')]),
    ).toEqual(['debian12-base', 'rocky8-base', 'usb-installer']);
    expect(planSchedule([img('c', ['b']), img('b', ['a']), img('a')])).toEqual(['a', 'b', 'c']);
  });

  it('reports a cycle as a configuration error naming the loop', () => {
    const e = (() => {
      try {
        planSchedule([img('a', ['b']), img('b', ['c']), img('c', ['a']), img('d')]);
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).message).toMatch(
      /images\/a\/image.yaml: needs: dependency cycle: a → b → c → a/,
    );
  });

  it('reports every unknown need', () => {
    expect(() => planSchedule([img('a', ['x']), img('b', ['y'])])).toThrow(
      /2 configuration problems:[\s\S]*"x" is not an image[\s\S]*"y" is not an image/,
    );
  });
});

describe('runSchedule', () => {
  it('one local host: builds in dependency order, one at a time', async () => {
    const r = recordingRunner({});
    const out = await runSchedule(
      [img('usb-installer', ['debian12-base']), img('debian12-base'), img('rocky8-base')],
      [{ name: 'local' }],
      r.run,
    );
    expect(r.events.filter((e) => e.ev === 'start').map((e) => e.image)).toEqual([
      'debian12-base',
      'rocky8-base',
      'usb-installer',
    ]);
    expect(r.overlap()).toBe(false);
    expect(out.map((o) => [o.image, o.status, o.host])).toEqual([
      ['debian12-base', 'built', 'local'],
      ['rocky8-base', 'built', 'local'],
      ['usb-installer', 'built', 'local'],
    ]);
  });

  it('two hypervisors: independent images in parallel, dependents after their base, never two per host', async () => {
    const r = recordingRunner({ 'debian12-base': 60, 'rocky8-base': 30, 'usb-installer': 10, extra: 10 });
    const out = await runSchedule(
      [img('debian12-base'), img('rocky8-base'), img('usb-installer', ['debian12-base']), img('extra')],
      [{ name: 'kvm1' }, { name: 'kvm2' }],
      r.run,
    );
    expect(r.overlap()).toBe(false);
    const starts = r.events.filter((e) => e.ev === 'start');
    // debian12-base and extra (alphabetical) start at once on the two hosts.
    expect(starts.slice(0, 2).map((e) => [e.image, e.host])).toEqual([
      ['debian12-base', 'kvm1'],
      ['extra', 'kvm2'],
    ]);
    const endOf = (i: string) => r.events.find((e) => e.ev === 'end' && e.image === i)?.t ?? -1;
    const startOf = (i: string) => starts.find((e) => e.image === i)?.t ?? -1;
    expect(startOf('usb-installer')).toBeGreaterThanOrEqual(endOf('debian12-base'));
    expect(new Set(out.map((o) => o.host))).toEqual(new Set(['kvm1', 'kvm2']));
    expect(out.every((o) => o.status === 'built')).toBe(true);
  });

  it('a failed base skips its dependents; independent images still build', async () => {
    const r = recordingRunner({}, ['debian12-base']);
    const out = await runSchedule(
      [img('debian12-base'), img('usb-installer', ['debian12-base']), img('rocky8-base')],
      [{ name: 'kvm1' }, { name: 'kvm2' }],
      r.run,
    );
    expect(out.map((o) => [o.image, o.status, o.blockedBy])).toEqual([
      ['debian12-base', 'failed', undefined],
      ['rocky8-base', 'built', undefined],
      ['usb-installer', 'skipped', 'debian12-base'],
    ]);
    expect(r.events.some((e) => e.image === 'usb-installer')).toBe(false);
  });

  it('starts nothing new once aborted', async () => {
    const ac = new AbortController();
    const r = recordingRunner({});
    const out = await runSchedule(
      [img('a'), img('b', ['a'])],
      [{ name: 'local' }],
      async (h, i) => {
        await r.run(h, i);
        ac.abort();
      },
      {},
      ac.signal,
    );
    expect(out.map((o) => o.status)).toEqual(['built', 'skipped']);
  });

  it('a host that is down gives its image to the others and takes no more', async () => {
    const down = Object.assign(new Error('hypervisor kvm1: cannot log in'), { code: 'E_HYPERVISOR_SSH' });
    const ran: string[] = [];
    const hostDown: string[] = [];
    const out = await runSchedule(
      [img('a'), img('b'), img('c')],
      [{ name: 'kvm1' }, { name: 'kvm2' }],
      async (h, i) => {
        ran.push(`${h.name}:${i}`);
        if (h.name === 'kvm1') throw down;
        await new Promise((r) => setTimeout(r, 5));
      },
      {
        hostFailed: (e) => (e as { code?: string }).code === 'E_HYPERVISOR_SSH',
        onHostDown: (h) => hostDown.push(h.name),
      },
    );
    expect(out.map((o) => [o.image, o.status, o.host])).toEqual([
      ['a', 'built', 'kvm2'],
      ['b', 'built', 'kvm2'],
      ['c', 'built', 'kvm2'],
    ]);
    expect(ran.filter((r) => r.startsWith('kvm1'))).toEqual(['kvm1:a']);
    expect(hostDown).toEqual(['kvm1']);
  });

  it("with every host down the images fail with the host's reason", async () => {
    const down = Object.assign(new Error('no pool'), { code: 'E_LIBVIRT_POOL' });
    const out = await runSchedule(
      [img('a'), img('b', ['a'])],
      [{ name: 'kvm1' }, { name: 'kvm1' }],
      async () => {
        throw down;
      },
      { hostFailed: () => true },
    );
    expect(out.map((o) => [o.image, o.status])).toEqual([
      ['a', 'failed'],
      ['b', 'skipped'],
    ]);
    expect(out[0]?.error).toBe(down);
  });

  it('a host with two slots runs two builds at once', async () => {
    let busy = 0;
    let most = 0;
    await runSchedule([img('a'), img('b'), img('c')], [{ name: 'kvm1' }, { name: 'kvm1' }], async () => {
      busy++;
      most = Math.max(most, busy);
      await new Promise((r) => setTimeout(r, 20));
      busy--;
    });
    expect(most).toBe(2);
  });
});
