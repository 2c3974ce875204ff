// The one logging interface of every layer below the daemon: a function taking a level and one line. The daemon's
// Logger (service/logger.ts) decides format, destination and threshold; storage and fuse only say what happened.
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
export type Log = (level: LogLevel, message: string) => void;
