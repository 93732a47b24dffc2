// Build facts baked in by .ci/build.ts with --define; "dev" values when run from source.
declare const SPL_VERSION: string | undefined;
declare const SPL_COMMIT: string | undefined;
declare const SPL_BUILD_TIME: string | undefined;

export const VERSION: string = typeof SPL_VERSION === "string" ? SPL_VERSION : "0.0.0-dev";
export const COMMIT: string = typeof SPL_COMMIT === "string" ? SPL_COMMIT : "unknown";
export const BUILD_TIME: string = typeof SPL_BUILD_TIME === "string" ? SPL_BUILD_TIME : "unknown";
