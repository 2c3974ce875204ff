// Idle API connections survive (snapshotter-contract.md 8 items 7 and 8, DECISIONS.md 15), the acceptance form of
// item 7: 120 s of silence, past Node's default 60 s header timeout and its 30 s check interval.
import { idleTest } from './idle.js';

idleTest(120);
