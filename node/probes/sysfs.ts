/**
 * Read-only access to a sysfs-like tree through a small interface, so probes read
 * fixture trees in tests and /sys in production through the same code.
 */
import { open, readdir } from 'node:fs/promises';

export type SysfsRead = { readonly ok: true; readonly text: string } | { readonly ok: false; readonly code: string };

export interface SysfsReader {
  /** Entry names of a directory, or null when it cannot be listed (missing, permission). */
  list(dir: string): Promise<string[] | null>;
  /** A small file's text, or the error code (ENOENT, EACCES, ...). */
  read(file: string): Promise<SysfsRead>;
}

/** sysfs attributes are at most one page (4 KiB); reading more is never needed. */
export const SYSFS_MAX_BYTES = 4096;
/** A power_supply or powercap directory with more entries than this is not real; bound the work. */
export const SYSFS_MAX_ENTRIES = 256;

function codeOf(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return 'EUNKNOWN';
}

/** The real reader (node:fs/promises), bounded per file and per directory. */
export const nodeSysfsReader: SysfsReader = {
  async list(dir) {
    try {
      const names = await readdir(dir);
      return names.sort().slice(0, SYSFS_MAX_ENTRIES);
    } catch {
      return null;
    }
  },
  async read(file) {
    let fh;
    try {
      fh = await open(file, 'r');
      const buf = Buffer.alloc(SYSFS_MAX_BYTES);
      const { bytesRead } = await fh.read(buf, 0, SYSFS_MAX_BYTES, 0);
      return { ok: true, text: buf.subarray(0, bytesRead).toString('utf8') };
    } catch (err) {
      return { ok: false, code: codeOf(err) };
    } finally {
      await fh?.close().catch(() => undefined);
    }
  },
};

/** An in-memory tree (path -> contents, or an error code to simulate EACCES), for tests and doctor dry runs. */
export function memorySysfsReader(files: Readonly<Record<string, string | { error: string }>>): SysfsReader {
  const norm = (p: string): string => p.replace(/\/+$/, '');
  return {
    list(dir) {
      const prefix = `${norm(dir)}/`;
      const names = new Set<string>();
      for (const path of Object.keys(files)) {
        if (path.startsWith(prefix)) {
          const rest = path.slice(prefix.length);
          const first = rest.split('/')[0];
          if (first !== undefined && first !== '') names.add(first);
        }
      }
      return Promise.resolve(names.size === 0 ? null : [...names].sort().slice(0, SYSFS_MAX_ENTRIES));
    },
    read(file) {
      const v = files[norm(file)];
      if (v === undefined) return Promise.resolve({ ok: false, code: 'ENOENT' });
      if (typeof v === 'string') return Promise.resolve({ ok: true, text: v });
      return Promise.resolve({ ok: false, code: v.error });
    },
  };
}

/** Trimmed text of `file`, or null when unreadable or empty. */
export async function readTrimmed(reader: SysfsReader, file: string): Promise<string | null> {
  const r = await reader.read(file);
  if (!r.ok) return null;
  const t = r.text.trim();
  return t === '' ? null : t;
}

/** A non-negative integer attribute (sysfs prints decimal), or null. */
export async function readUint(reader: SysfsReader, file: string): Promise<number | null> {
  const t = await readTrimmed(reader, file);
  if (t === null || !/^\d{1,16}$/.test(t)) return null;
  const v = Number(t);
  return Number.isSafeInteger(v) ? v : null;
}
