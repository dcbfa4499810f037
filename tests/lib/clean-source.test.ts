/** cleanSource: the whole context is "", never "." (resolveSource relies on it). */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { cleanSource } from "../../lib/context/resolve";

test('cleanSource never returns "." and keeps every source inside the context', () => {
    for (const s of [".", "./", "/", "", "./.", "a/..", "../", "/./."]) assert.equal(cleanSource(s), "", JSON.stringify(s));
    fc.assert(
        fc.property(fc.stringMatching(/^[./a\\]{0,12}$/), (s) => {
            const c = cleanSource(s);
            return c !== "." && !c.startsWith("/") && !c.endsWith("/") && !c.split("/").includes("..");
        }),
        { numRuns: 2000 },
    );
});
