// What the browser scripts share with the Go tests that run them (cmd/onair/e2e): a line
// protocol on stdout/stdin, where "@<command> ..." asks the Go side to act and waits for
// its "ok", and every other line is a log line; plus the checks that end a script.
import { createInterface } from 'node:readline';

let lines;

// ask sends a command to the Go side and waits for its answer, "ok" and what the Go side
// adds after it, which it returns.
export async function ask(command) {
  lines ??= createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  console.log(command);
  const { value, done } = await lines.next();
  const [ok, ...rest] = done ? [] : value.trim().split(/\s+/);
  if (ok !== 'ok') throw new Error(`${command}: the test answered ${done ? 'nothing' : JSON.stringify(value)}`);
  return rest.join(' ');
}

const started = Date.now();

// log prints a line with the seconds since the script started.
export const log = (...a) => console.log(`# ${((Date.now() - started) / 1000).toFixed(1)}s`, ...a);

export function check(ok, message) {
  if (!ok) throw new Error(`check failed: ${message}`);
}
