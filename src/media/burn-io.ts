import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { InterruptedError, UserError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { ByteSink } from './bmap.js';
import type { Bmap } from './bmap-format.js';
import { DIRECT_ALIGN } from './burn-chunks.js';

/**
 * Buffered writes (a device without O_DIRECT) fdatasync this often: progress and ETA then follow
 * what reached the drive (a USB stick is far slower than the page cache) and the final fsync does
 * not sit at 100% for minutes. bmaptool does the same every 6 MiB.
 */
export const SYNC_EVERY_BYTES = 32 * 1024 * 1024;

/** auto: zero holes when the device can do it without writing them (write-zeroes offload). */
export type HoleMode = 'auto' | 'zero' | 'keep';

export interface WriteImageOptions {
  device: string;
  /**
   * A regular file instead of a block device (as bmaptool copy to a file): `device` is then a new
   * file, created here exclusively and sized to the image; its holes stay holes (nothing to zero).
   */
  file?: boolean;
  image: string;
  compressed: boolean;
  bmap: Bmap;
  verify: boolean;
  holes: HoleMode;
  log: Logger;
  progress: ByteSink;
  say: (line: string) => void;
  signal?: AbortSignal;
  /** fdatasync after this many bytes (default SYNC_EVERY_BYTES; 0: only at the end). */
  syncEveryBytes?: number;
  /** Size of the device in bytes (hole zeroing stops there). */
  deviceSize?: number;
  /** Test hook: runs after the write and fsync, before the read-back. */
  beforeVerify?: () => Promise<void>;
}

export interface WriteImageResult {
  written: number;
  writeSeconds: number;
  verifySeconds?: number;
  holes:
    | 'zeroed by the device'
    | 'zeroed by writing'
    | 'left as they were'
    | 'left as holes (a new sparse file)'
    | 'none';
}

export function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw signal.reason instanceof InterruptedError ? signal.reason : new InterruptedError('SIGINT');
  }
}

/** A write or read-back that stopped early; `reason`: the system error code (EIO, EINVAL...) or what happened. */
export class ShortWriteError extends UserError {
  constructor(
    message: string,
    readonly reason?: string,
  ) {
    super(
      'E_BURN_SHORT_WRITE',
      message,
      'the device is smaller than the image, was removed, or is failing: check it with lsblk -b and try another drive',
    );
  }
}

export function shortWrite(
  device: string,
  pos: number,
  wrote: number,
  wanted: number,
  cause?: string,
): UserError {
  return new ShortWriteError(
    `short write on ${device} at byte ${pos}: ${wrote} of ${wanted} bytes written${cause ? ` (${cause})` : ''}`,
    cause,
  );
}

/** pwrite all of data at pos, or fail with a clear short-write error. */
export async function writeFully(fh: FileHandle, device: string, data: Buffer, pos: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    let n: number;
    try {
      ({ bytesWritten: n } = await fh.write(data, done, data.length - done, pos + done));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw shortWrite(device, pos + done, done, data.length, code);
    }
    if (n === 0) throw shortWrite(device, pos + done, done, data.length, 'the device accepted no more bytes');
    done += n;
  }
}

export async function openDevice(device: string, file = false): Promise<FileHandle> {
  try {
    if (file) return await open(device, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o644);
    return await open(device, constants.O_RDWR | constants.O_EXCL);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EBUSY') {
      throw new UserError(
        'E_BURN_BUSY',
        `${device} is busy: mounted, or opened exclusively by another program`,
        'unmount its partitions (umount) and close programs using it, then try again',
      );
    }
    if (code === 'EACCES' || code === 'EPERM') {
      throw new UserError(
        'E_BURN_PERMISSION',
        `no permission to write ${device}`,
        'run osbake burn as root (sudo)',
      );
    }
    if (code === 'EROFS')
      throw new UserError('E_BURN_READONLY', `${device} is read-only`, 'check its write-protect switch');
    throw new UserError(
      'E_BURN_OPEN',
      `cannot open ${device}: ${code ?? String(err)}`,
      'check the device path',
    );
  }
}

export async function syncDevice(fh: FileHandle, device: string, datasync = false): Promise<void> {
  try {
    await (datasync ? fh.datasync() : fh.sync());
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new UserError(
      'E_BURN_IO',
      `writing to ${device} failed (${code} on fsync)`,
      'the drive may be failing: try another one',
    );
  }
}

/**
 * A second descriptor of the device with O_DIRECT (the first holds O_EXCL), for the writes and the
 * read-back, or undefined where the device or its driver refuses direct I/O (EINVAL).
 */
async function openDirect(device: string): Promise<FileHandle | undefined> {
  try {
    return await open(device, constants.O_RDWR | constants.O_DIRECT);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EINVAL') return undefined;
    throw err;
  }
}

/**
 * Where the data goes. O_DIRECT when the device takes it: no page cache between osbake and the
 * drive, so the progress is what the drive accepted and the data is not copied once more (on a
 * loop device: twice, through the device's and the backing file's caches). A write that is not a
 * whole number of blocks (the image's last bytes) goes through the buffered descriptor. Without
 * O_DIRECT, buffered writes with an fdatasync every SYNC_EVERY_BYTES.
 */
export class DeviceWriter {
  private sinceSync = 0;

  private constructor(
    private readonly fh: FileHandle,
    private direct: FileHandle | undefined,
    private readonly o: WriteImageOptions,
  ) {}

  static async open(fh: FileHandle, o: WriteImageOptions): Promise<DeviceWriter> {
    const direct = o.bmap.blockSize % DIRECT_ALIGN === 0 ? await openDirect(o.device) : undefined;
    o.log.info({ direct: direct !== undefined }, 'write mode');
    return new DeviceWriter(fh, direct, o);
  }

  /** The O_DIRECT descriptor, while direct I/O works on this device (the read-back uses it too). */
  get directHandle(): FileHandle | undefined {
    return this.direct;
  }

  async write(data: Buffer, pos: number): Promise<void> {
    let head = 0;
    if (this.direct && pos % DIRECT_ALIGN === 0) {
      head = data.length - (data.length % DIRECT_ALIGN);
      try {
        if (head > 0) await writeFully(this.direct, this.o.device, data.subarray(0, head), pos);
      } catch (err) {
        // The device opened with O_DIRECT but refuses the write itself: buffered from here on.
        if (!(err instanceof ShortWriteError && err.reason === 'EINVAL')) throw err;
        this.o.log.warn({ pos }, 'O_DIRECT write refused (EINVAL): buffered writes from here on');
        await this.closeDirect();
        head = 0;
      }
    }
    if (head === data.length) return;
    await writeFully(this.fh, this.o.device, data.subarray(head), pos + head);
    this.sinceSync += data.length - head;
    const every = this.o.syncEveryBytes ?? SYNC_EVERY_BYTES;
    if (every > 0 && this.sinceSync >= every) {
      await syncDevice(this.fh, this.o.device, true);
      this.sinceSync = 0;
    }
  }

  /** fsync on the block device: its page cache, then a cache flush of the drive (all descriptors). */
  async sync(): Promise<void> {
    await syncDevice(this.fh, this.o.device);
  }

  async closeDirect(): Promise<void> {
    const d = this.direct;
    this.direct = undefined;
    await d?.close();
  }
}
