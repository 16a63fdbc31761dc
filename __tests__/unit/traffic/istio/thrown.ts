/** The error `fn` throws (fails the test when it returns). */
export function thrown(fn: () => unknown): Error {
  try {
    fn()
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a throw, got a return')
}
