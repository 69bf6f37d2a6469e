/**
 * Trainer process entry (launched by the extension or the CLI with a real `node`).
 * The experiment runner is not wired in yet; starting the trainer says so and exits with status 1.
 */
import { SCULPT_VERSION } from '../protocol/version';

console.error(`sculpt trainer ${SCULPT_VERSION}: the experiment runner is not available yet.`);
process.exit(1);
