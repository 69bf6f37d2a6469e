/** Version of the trainer event stream (events.jsonl and IPC). Readers ignore event types they do not know. */
export const EVENTS_VERSION = 1;

/** The product version, injected by the bundler from package.json. */
export const SCULPT_VERSION: string = typeof __SCULPT_VERSION__ === 'string' ? __SCULPT_VERSION__ : '0.0.0-dev';

declare const __SCULPT_VERSION__: string | undefined;
