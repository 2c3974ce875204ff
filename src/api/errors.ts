// API errors (spec nydusd-runtime.md 3.3): every error answer is `{"code":"UNDEFINED","message":...}` with the
// reference's status. The message starts with the route's wrapper word (`Configure`, `DaemonInfo`, ...) as the
// reference's does, followed by plain text (DECISIONS.md 9: clear human text, the reference's phrases kept).

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ErrorBody {
  code: 'UNDEFINED';
  message: string;
}

export function errorBody(message: string): ErrorBody {
  return { code: 'UNDEFINED', message };
}

/** 501: a route whose behaviour another part of the work brings. */
export function notImplemented(what: string): ApiError {
  return new ApiError(501, `not implemented yet: ${what}`);
}
