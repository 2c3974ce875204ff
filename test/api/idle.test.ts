// Idle API connections survive (snapshotter-contract.md 8 items 7 and 8, DECISIONS.md 15), the short form run with
// every suite: 10 s of silence. test/contract/idle-120s.test.ts runs the acceptance form (120 s, past Node's 60 s
// header timeout).
import { idleTest } from './idle.js';

idleTest(10);
