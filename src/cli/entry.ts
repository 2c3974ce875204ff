// How the executables end: a subcommand's exit status, a usage error (its message, the usage text and its exit
// status), or any other failure as one `Error:` line and status 1. A closed stdout (`... | head`) ends quietly.
import { UsageError } from '../argv.js';

export function runCli(run: () => Promise<number>, usage: string): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  run().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      if (err instanceof UsageError) {
        process.stderr.write(`error: ${err.message}\n\n${usage}`);
        process.exitCode = err.exitCode;
        return;
      }
      process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
