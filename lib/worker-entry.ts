// Where a Worker's module is, from source and from the compiled binary alike. In the binary,
// modules live under /$bunfs/ and a worker is named by its entry point's path from the build
// root (each worker is an entry point in .ci/build.ts); from source it is the file itself.

/** `path`: the worker module's path from the repository root, e.g. "lib/store/checkpoint-worker.ts". */
export function workerEntry(path: string): string {
  return import.meta.url.includes("/$bunfs/") ? `./${path}` : new URL(`../${path}`, import.meta.url).href;
}
