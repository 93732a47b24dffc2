// Errors a user can act on. The CLI prints them as one line, `error: <what> — <fix>`, with no
// stack trace, and exits with `exitCode` (1 failure, 2 usage).
export class UserError extends Error {
  constructor(
    message: string,
    readonly fix?: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }

  get oneLine(): string {
    return this.fix ? `${this.message} — ${this.fix}` : this.message;
  }
}

export class UsageError extends UserError {
  constructor(message: string, fix = "see --help") {
    super(message, fix, 2);
  }
}
