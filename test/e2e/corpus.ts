/**
 * The bad-input corpus, generated: for every key of osbake.yaml and image.yaml (walking the zod
 * schemas) a value of the wrong type and, where the key has bounds, one out of them; for every file
 * the CLI reads, the hostile variants (FIFO, directory, symlink out of the project, oversized,
 * binary, YAML alias bomb); and hostile command lines. Each case says what it writes and runs.
 */
import type { z } from 'zod';

export interface SchemaLeaf {
  path: (string | number)[];
  /** Values the schema must refuse at that path. */
  bad: unknown[];
}

type Def = { type: string; [k: string]: unknown };
const defOf = (s: unknown): Def => (s as { _zod: { def: Def } })._zod.def;

/** A sample key for records (the netboot nodes are keyed by MAC; Packer variables by name). */
const RECORD_KEY: Record<string, string> = {
  nodes: '52:54:00:12:34:56',
  variables: 'some_var',
};

function badValues(def: Def): unknown[] | undefined {
  const checks = ((def.checks as unknown[] | undefined) ?? []).map((c) => defOf(c));
  switch (def.type) {
    case 'string': {
      const out: unknown[] = [{ not: 'a string' }];
      if (checks.some((c) => c.check === 'string_format' || c.check === 'custom'))
        out.push('bad value\nsecond line $(id)');
      else if (checks.some((c) => c.check === 'min_length')) out.push('');
      return out;
    }
    case 'number': {
      const out: unknown[] = ['many'];
      const max = checks.find((c) => c.check === 'less_than') as { value?: number } | undefined;
      const min = checks.find((c) => c.check === 'greater_than') as { value?: number } | undefined;
      if (max?.value !== undefined) out.push(max.value + 1);
      if (min?.value !== undefined) out.push(min.value - 1);
      if (checks.some((c) => c.format === 'safeint' || c.check === 'number_format')) out.push(1.5);
      return out;
    }
    case 'boolean':
      return ['maybe'];
    case 'enum':
      return ['no-such-choice', 7];
    case 'union':
      return [{ nested: ['object'] }];
    case 'array':
      return ['not a list'];
    default:
      return undefined;
  }
}

/**
 * Every leaf of a zod object schema with the values it must refuse. A leaf whose type this walker
 * cannot make a bad value for is returned with bad = [] — the test fails on it, so a new key
 * cannot go without a bad-value case.
 */
export function schemaLeaves(schema: z.ZodType, path: (string | number)[] = []): SchemaLeaf[] {
  let def = defOf(schema);
  for (;;) {
    if (['default', 'prefault', 'optional', 'nullable', 'readonly'].includes(def.type)) {
      def = defOf(def.innerType);
    } else if (def.type === 'pipe') {
      def = defOf(def.in);
    } else break;
  }
  if (def.type === 'object') {
    const shape = def.shape as Record<string, z.ZodType>;
    return Object.entries(shape).flatMap(([k, v]) => schemaLeaves(v, [...path, k]));
  }
  if (def.type === 'record') {
    const key = RECORD_KEY[String(path.at(-1))] ?? 'key';
    return [{ path, bad: ['not a mapping'] }, ...schemaLeaves(def.valueType as z.ZodType, [...path, key])];
  }
  if (def.type === 'array') {
    const element = defOf(def.element);
    const own: SchemaLeaf = { path, bad: ['not a list', { a: 1 }] };
    const inner = schemaLeaves(def.element as z.ZodType, [...path, 0]);
    return element.type === 'object' ? [own, ...inner] : [own, ...inner.map((l) => ({ ...l, bad: l.bad }))];
  }
  return [{ path, bad: badValues(def) ?? [] }];
}

/** A YAML "billion laughs": ten levels of nine aliases each. */
export function aliasBomb(): string {
  const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  const names = 'abcdefghij';
  for (let i = 1; i < names.length; i++) {
    const p = names[i - 1];
    lines.push(`${names[i]}: &${names[i]} [*${p},*${p},*${p},*${p},*${p},*${p},*${p},*${p},*${p}]`);
  }
  return `${lines.join('\n')}\n`;
}
