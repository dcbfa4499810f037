/** Types of bin/fresh.js (plain JavaScript: the entries load it before any TypeScript support). */
export declare function compiledIsFresh(root: string): boolean;
export declare const SOURCE_DIRS: readonly string[];
export declare const SOURCE_FILES: readonly string[];
