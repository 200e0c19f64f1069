// What the CLI's exit code tells a script (design/cli-and-sdk.md): 1 the server refused,
// 2 a usage error, 3 the server cannot be reached or there is no one to log in as.

export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.exitCode = exitCode;
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 2);
  }
}

export class Unreachable extends CliError {
  constructor(message: string) {
    super(message, 3);
  }
}

export class NotLoggedIn extends CliError {
  constructor(message: string) {
    super(message, 3);
  }
}

/** A refusal by the server: a problem+json of the management API, or an OAuth error. */
export class Refused extends CliError {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, detail: string, requestId?: string) {
    super(`${detail} (code: ${code}, HTTP ${status}${requestId ? `, request ${requestId}` : ''})`, 1);
    this.status = status;
    this.code = code;
  }
}
