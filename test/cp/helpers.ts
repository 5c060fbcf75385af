// Helpers of the coordination-primitive tests.

/** The `code` of what `f` throws or rejects with (undefined when it does neither). */
export const code = async (f: () => unknown): Promise<string | undefined> => {
  try {
    await f();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
};
