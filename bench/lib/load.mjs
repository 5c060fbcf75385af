// Load shapes shared by the concurrency scenarios.

/** One call at a time over `keys`, round robin. */
export const oneAtATime = (keys, get) => {
  let i = 0;
  const n = keys.length;
  return () => get(keys[(i = (i + 1) % n)]);
};

/** `c` calls issued at once and awaited together, over `keys` round robin. */
export const rounds = (keys, c, get) => {
  let i = 0;
  const n = keys.length;
  return () => {
    const ps = new Array(c);
    for (let j = 0; j < c; j++) ps[j] = get(keys[(i = (i + 1) % n)]);
    return Promise.all(ps);
  };
};
