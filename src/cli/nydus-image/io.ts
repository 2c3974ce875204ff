// Where the subcommands print: stdout for the executable, a capture buffer when tests run them in-process.
export const io = {
  stdout(text: string): void {
    process.stdout.write(text);
  },
};
