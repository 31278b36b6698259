/** osbake's version, recorded in manifest.json entries and SBOMs and printed by --version. */
export const OSBAKE_VERSION = '0.1.0';
