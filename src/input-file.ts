// Files and directories named on a command line, opened so that no input can hang or exhaust the process:
// the path is stat'ed first (a FIFO or device is refused without being opened), then opened with O_NONBLOCK
// (so a FIFO swapped in between cannot block open(2)) and fstat'ed again, and read with a bound: never past
// the size it had when opened (a file growing while read ends where it was), never past a per-kind limit.
// A synchronous read that never ends would block the main thread, and with it the SIGTERM handler.
import fs, { type Stats } from 'node:fs';
import { constants as bufferConstants } from 'node:buffer';

/** The largest input read whole into memory (Node's Buffer limit). */
export const MAX_INPUT_BYTES = bufferConstants.MAX_LENGTH;

/** An input error: one line naming the file, what it was meant to be, and what is wrong with it. */
export class InputFileError extends Error {
  constructor(
    message: string,
    /** the errno name, or EINVAL for a file of the wrong type, EFBIG for one too large */
    readonly code?: string,
    /** the errno's text alone (`permission denied (EACCES)`), for callers that name the file themselves */
    readonly reason?: string,
  ) {
    super(message);
    this.name = 'InputFileError';
  }
}

/** "a FIFO", "a character device", ... for the file type in `mode`. */
export function fileTypeName(mode: number): string {
  switch (mode & fs.constants.S_IFMT) {
    case fs.constants.S_IFREG: return 'a regular file';
    case fs.constants.S_IFDIR: return 'a directory';
    case fs.constants.S_IFIFO: return 'a FIFO';
    case fs.constants.S_IFCHR: return 'a character device';
    case fs.constants.S_IFBLK: return 'a block device';
    case fs.constants.S_IFSOCK: return 'a socket';
    case fs.constants.S_IFLNK: return 'a symbolic link';
    default: return 'a file of unknown type';
  }
}

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ELOOP: 'too many levels of symbolic links (a symlink loop?)',
  ENOTDIR: 'a component of the path is not a directory',
  ENAMETOOLONG: 'file name too long',
  EISDIR: 'is a directory',
  ENXIO: 'no such device or address',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EIO: 'input/output error',
};

/** `cannot <verb> <what> <file>: <reason>` for a failed system call; other errors keep their message. */
export function inputError(err: unknown, file: string, what: string, verb = 'open'): InputFileError {
  if (err instanceof InputFileError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const reason = code ? `${ERRNO_TEXT[code] ?? code.toLowerCase()} (${code})` : (err as Error).message;
  if (code === 'ENOENT') return new InputFileError(`${what} ${file} does not exist (ENOENT)`, code, reason);
  return new InputFileError(`cannot ${verb} ${what} ${file}: ${reason}`, code, reason);
}

function wrongType(file: string, what: string, st: Stats, expected: 'a regular file' | 'a directory'): InputFileError {
  return new InputFileError(`${what} ${file} is ${fileTypeName(st.mode)}, not ${expected}`, 'EINVAL');
}

function statPath(file: string, what: string): Stats {
  try {
    return fs.statSync(file);
  } catch (e) {
    throw inputError(e, file, what);
  }
}

/** An open regular input file; `size` is its size when opened, and every read stops there. */
export interface OpenedInput {
  fd: number;
  size: number;
  path: string;
}

/** Opens a regular file for reading; the caller closes `fd`. */
export function openInputFile(file: string, what: string): OpenedInput {
  const before = statPath(file, what);
  if (!before.isFile()) throw wrongType(file, what, before, 'a regular file');
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    throw inputError(e, file, what);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw wrongType(file, what, st, 'a regular file');
    return { fd, size: st.size, path: file };
  } catch (e) {
    fs.closeSync(fd);
    throw inputError(e, file, what, 'stat');
  }
}

/** Reads `len` bytes at `pos` of an opened input, or fewer if the file shrank meanwhile. */
export function readInputRange(input: OpenedInput, pos: number, len: number, what: string): Buffer {
  const buf = Buffer.allocUnsafe(len);
  let done = 0;
  try {
    while (done < len) {
      const n = fs.readSync(input.fd, buf, done, len - done, pos + done);
      if (n === 0) break;
      done += n;
    }
  } catch (e) {
    throw inputError(e, input.path, what, 'read');
  }
  return done === len ? buf : buf.subarray(0, done);
}

/**
 * Reads a whole regular file of at most `maxBytes` (a larger one is refused, with both sizes in the error).
 * What is appended after the open is not read.
 */
export function readInputFile(file: string, what: string, maxBytes = MAX_INPUT_BYTES): Buffer {
  const input = openInputFile(file, what);
  try {
    if (input.size > maxBytes) {
      throw new InputFileError(`${what} ${file} is too large: ${input.size} bytes, at most ${maxBytes} accepted`, 'EFBIG');
    }
    return readInputRange(input, 0, input.size, what);
  } finally {
    fs.closeSync(input.fd);
  }
}

/**
 * Checks that `dir` is a directory that can be listed (opened with O_NONBLOCK, like files, and only once
 * stat says it is a directory, so no device is ever opened). Returns its stat.
 */
export function checkInputDirectory(dir: string, what: string): Stats {
  const st = statPath(dir, what);
  if (!st.isDirectory()) throw wrongType(dir, what, st, 'a directory');
  let fd: number;
  try {
    fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_DIRECTORY);
  } catch (e) {
    throw inputError(e, dir, what);
  }
  fs.closeSync(fd);
  return st;
}

/** A path that must be a directory (stat only: for mountpoints, which need no read permission). */
export function checkDirectoryPath(dir: string, what: string): Stats {
  const st = statPath(dir, what);
  if (!st.isDirectory()) throw wrongType(dir, what, st, 'a directory');
  return st;
}

/**
 * An output file: absent (its directory must then exist or be creatable) or an existing regular file. Writing
 * to a FIFO would block in open(2) until a reader comes, and a device or directory is never what was meant.
 */
export function checkOutputFile(file: string, what: string): void {
  let st: Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw inputError(e, file, what, 'write');
    return;
  }
  if (!st.isFile()) throw wrongType(file, what, st, 'a regular file');
}

/**
 * Creates or truncates an output file after checking it (see checkOutputFile); the caller closes the fd.
 * O_NONBLOCK: a FIFO swapped in after the check fails with ENXIO instead of waiting for a reader.
 */
export function openOutputFile(file: string, what: string, flags = fs.constants.O_TRUNC): number {
  checkOutputFile(file, what);
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_NONBLOCK | flags, 0o644);
  } catch (e) {
    throw inputError(e, file, what, 'write');
  }
  const st = fs.fstatSync(fd);
  if (!st.isFile()) {
    fs.closeSync(fd);
    throw wrongType(file, what, st, 'a regular file');
  }
  return fd;
}

/** Writes a whole output file (see openOutputFile), with errors naming it. */
export function writeOutputFile(file: string, what: string, data: string | Uint8Array): void {
  const fd = openOutputFile(file, what);
  try {
    fs.writeFileSync(fd, data);
  } catch (e) {
    throw inputError(e, file, what, 'write');
  } finally {
    fs.closeSync(fd);
  }
}

/** An output directory: created when absent; an existing one must be a directory. */
export function ensureOutputDirectory(dir: string, what: string): void {
  try {
    const st = fs.statSync(dir);
    if (!st.isDirectory()) throw wrongType(dir, what, st, 'a directory');
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw inputError(e, dir, what);
  }
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw inputError(e, dir, what, 'create');
  }
}
