// nydusd's log lines: `[YYYY-MM-DD HH:MM:SS.ffffff ±hh:mm] LEVEL message`, with the source location the
// reference adds for non-INFO levels left out (there is no Rust source line to name). To stderr, or
// appended to --log-file, whose extension defaults to `.log` and whose directory is created.
import fs from 'node:fs';
import path from 'node:path';
import type { LogLevel } from './args.js';
import { checkOutputFile, ensureOutputDirectory, openOutputFile } from '../input-file.js';

const ORDER: Record<LogLevel, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4, off: 5 };

export class Logger {
  private fd: number;

  constructor(
    public level: LogLevel,
    file?: string,
  ) {
    this.fd = 2;
    if (file) this.fd = Logger.open(file);
  }

  /**
   * Opens `--log-file` for appending: `/var/log/nydusd` writes `/var/log/nydusd.log`; relative paths are against
   * the cwd; its directory is created. A path that names a directory or a device as given is refused: the added
   * `.log` would otherwise send every line somewhere the operator does not look. Errors name the file.
   */
  static open(file: string): number {
    checkOutputFile(file, 'log file');
    const abs = path.resolve(file);
    const withExt = path.extname(abs) ? abs : `${abs}.log`;
    ensureOutputDirectory(path.dirname(withExt), 'log directory');
    return openOutputFile(withExt, 'log file', fs.constants.O_APPEND);
  }

  enabled(level: LogLevel): boolean {
    return ORDER[level] >= ORDER[this.level];
  }

  log(level: Exclude<LogLevel, 'off'>, message: string): void {
    if (!this.enabled(level)) return;
    fs.writeSync(this.fd, `[${timestamp(new Date())}] ${level.toUpperCase()} ${message}\n`);
  }

  /** An INFO line the operator explicitly asked for (SIGUSR2): written at any level except `off`. */
  report(message: string): void {
    if (this.level === 'off') return;
    fs.writeSync(this.fd, `[${timestamp(new Date())}] INFO ${message}\n`);
  }

  trace(m: string): void { this.log('trace', m); }
  debug(m: string): void { this.log('debug', m); }
  info(m: string): void { this.log('info', m); }
  warn(m: string): void { this.log('warn', m); }
  error(m: string): void { this.log('error', m); }

  close(): void {
    if (this.fd > 2) fs.closeSync(this.fd);
    this.fd = 2;
  }
}

function timestamp(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const micros = p(d.getMilliseconds(), 3) + '000';
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${micros} ${sign}${p(Math.floor(Math.abs(off) / 60))}:${p(Math.abs(off) % 60)}`;
}
