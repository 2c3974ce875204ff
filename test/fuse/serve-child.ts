// Child process for the FUSE tests: serves the test filesystem on a session it resumes (fd 3 inherited, state in
// FUSE_STATE) or mounts itself (mountpoint in argv). Prints "ready" with the state and the INIT requests it got
// (none when it resumed), and "closed" with its request counts, on stdout; it exits on its own once the connection
// is gone, which is what "clean exit after an external umount" means.
import { Session, type SessionState } from '../../src/fuse/session.js';
import { buildTestFs } from './memfs.js';

const [mode, arg] = process.argv.slice(2);
const fs = buildTestFs({ withOpen: true });
let session: Session;
if (mode === 'resume') {
  const state = JSON.parse(process.env.FUSE_STATE ?? 'null') as SessionState;
  session = await Session.resume(3, state, fs);
} else if (mode === 'mount' && arg) {
  session = await Session.mount(fs, { mountpoint: arg });
} else {
  throw new Error('usage: serve-child.js resume | mount <mountpoint>');
}
session.once('closed', () => process.stdout.write(`closed ${JSON.stringify(Object.fromEntries(session.opCounts))}\n`));
process.stdout.write(`ready ${JSON.stringify({ inits: session.opCounts.get('INIT') ?? 0, state: session.state() })}\n`);
