// Reading the config directory without ever blocking or running away: only regular files are read
// (a FIFO, socket or device named `*.yaml` is refused, never opened for a blocking read), each file
// and the directory as a whole are size-bounded, and symlinked directory loops are cut.
import { closeSync, constants, fstatSync, openSync, readdirSync, readSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from './errors.ts';

export const FILE_LIMITS = {
  /** Largest single config file, bytes (TOLLGATE_CONFIG_MAX_FILE_BYTES). */
  maxFileBytes: 32 * 1024 * 1024,
  /** All config files together, bytes. */
  maxTotalBytes: 256 * 1024 * 1024,
  /** Files in the directory tree. */
  maxFiles: 10_000,
  /** Directory nesting. */
  maxDepth: 16,
};

/** Per-file limit from TOLLGATE_CONFIG_MAX_FILE_BYTES when set (a positive integer), else the default. */
export function maxFileBytesFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.TOLLGATE_CONFIG_MAX_FILE_BYTES);
  return Number.isSafeInteger(v) && v > 0 ? v : FILE_LIMITS.maxFileBytes;
}

function fileKind(mode: number): string {
  const t = mode & constants.S_IFMT;
  if (t === constants.S_IFIFO) return 'a FIFO';
  if (t === constants.S_IFSOCK) return 'a socket';
  if (t === constants.S_IFCHR) return 'a character device';
  if (t === constants.S_IFBLK) return 'a block device';
  if (t === constants.S_IFDIR) return 'a directory';
  return 'not a regular file';
}

/**
 * Reads one file as UTF-8, refusing anything that is not a regular file or is larger than
 * `maxBytes`. Opened non-blocking, so a FIFO never waits for a writer; the type is checked on the
 * open descriptor, so a file swapped for a FIFO after a stat cannot slip through.
 */
export function readRegularFile(path: string, maxBytes: number, label = path): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | (constants.O_NOCTTY ?? 0));
  } catch (e) {
    throw new ConfigError(`${label}: cannot open: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new ConfigError(`${label}: ${fileKind(st.mode)}, not a regular file; refusing to read it`);
    if (st.size > maxBytes) throw new ConfigError(`${label}: ${st.size} bytes, over the ${maxBytes}-byte limit per config file`);
    // Read at most maxBytes + 1: a file growing while we read is caught too.
    const buf = Buffer.allocUnsafe(Math.min(st.size, maxBytes) + 1);
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n === buf.length) {
        if (n > maxBytes) throw new ConfigError(`${label}: over the ${maxBytes}-byte limit per config file`);
        break;
      }
    }
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * Every `*.yaml`/`*.yml` file under `dir` (dot files and dot directories skipped). Throws
 * ConfigError for a missing directory, a directory loop, or too many files.
 */
export function listConfigFiles(dir: string): string[] {
  let root;
  try {
    root = statSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(code === 'ENOENT' ? `config directory ${dir} does not exist` : `config directory ${dir}: ${code ?? (e as Error).message}`);
  }
  if (!root.isDirectory()) throw new ConfigError(`config directory ${dir} is not a directory`);
  const out: string[] = [];
  const seen = new Set<string>();
  const walk = (d: string, depth: number): void => {
    if (depth > FILE_LIMITS.maxDepth) throw new ConfigError(`${d}: config directories nest deeper than ${FILE_LIMITS.maxDepth} levels`);
    const real = realpathSync(d);
    if (seen.has(real)) throw new ConfigError(`${d}: directory loop (it is ${real} again)`);
    seen.add(real);
    for (const name of readdirSync(d).sort()) {
      if (name.startsWith('.')) continue;
      const full = join(d, name);
      let st;
      try {
        st = statSync(full); // follows symlinks (Kubernetes ConfigMaps are symlinks)
      } catch (e) {
        // A dangling symlink named *.yaml is an error; anything else dangling is not ours.
        if (/\.ya?ml$/.test(name)) throw new ConfigError(`${full}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        continue;
      }
      if (st.isDirectory()) walk(full, depth + 1);
      else if (/\.ya?ml$/.test(name)) {
        out.push(full);
        if (out.length > FILE_LIMITS.maxFiles) throw new ConfigError(`config directory ${dir} has more than ${FILE_LIMITS.maxFiles} YAML files`);
      }
    }
  };
  walk(dir, 0);
  return out;
}
