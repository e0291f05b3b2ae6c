import type { TestContext } from 'node:test';

/**
 * Registers clean-up work for one test; it runs after the test, last registered first (so a
 * load balancer started after its backends is closed before them), even when the test fails.
 */
export function cleanupFor(t: TestContext): (fn: () => unknown) => void {
  const stack: (() => unknown)[] = [];
  t.after(async () => {
    while (stack.length > 0) await (stack.pop() as () => unknown)();
  });
  return (fn) => {
    stack.push(fn);
  };
}
