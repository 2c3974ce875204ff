// API errors (spec nydusd-runtime.md 3.3): every error answer is `{"code":"UNDEFINED","message":...}` with the
// reference's status. The message starts with the route's wrapper word (`Configure`, `DaemonInfo`, ...) as the
// reference's does, followed by plain text (DECISIONS.md 9: clear human text, the reference's phrases kept).

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** false for the handler-level errors (`ParseBody`, `BadRequest`, ...), which carry no route wrapper */
    readonly wrapped = true,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ErrorBody {
  code: 'UNDEFINED';
  message: string;
}

/**
 * Longest message sent: messages quote what the client sent (a mountpoint, a key), which may be up to the HTTP
 * parser's header limit (16 KiB); one clear line does not need more than its start.
 */
export const MAX_MESSAGE_CHARS = 1024;

export function errorBody(message: string): ErrorBody {
  // one line: a client's value with a newline in it must not split the message
  const line = message.replace(/[\r\n]+/g, ' ');
  if (line.length <= MAX_MESSAGE_CHARS) return { code: 'UNDEFINED', message: line };
  return { code: 'UNDEFINED', message: `${line.slice(0, MAX_MESSAGE_CHARS)}... (${line.length - MAX_MESSAGE_CHARS} more characters)` };
}

/** 501: a route whose behaviour another part of the work brings. */
export function notImplemented(what: string): ApiError {
  return new ApiError(501, `not implemented yet: ${what}`);
}
