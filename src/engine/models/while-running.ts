/**
 * Runs `f` and calls `restore` once `f` is over: at once when it returns a value or throws, and when its promise
 * settles when it returns one. Model state set up for `f` (replaced weights) thus outlives the asynchronous
 * reads of an evaluation (webgpu has no synchronous readback in Node), yet ends with `f` as before.
 */
export function whileRunning<T>(f: () => T, restore: () => void): T {
  let result: T;
  try {
    result = f();
  } catch (e) {
    restore();
    throw e;
  }
  if (result instanceof Promise) return result.finally(restore) as T;
  restore();
  return result;
}
