/**
 * The daemonless recipe's config edits, unit-tested against Docker's rules (BuildKit's dispatchers).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { appRecipe } from "../../lib/build/daemonless";
import type { ImageConfig } from "../../lib/oci/mediatypes";

const ARGS = { BASE_IMAGE: "r.example/t/base@sha256:" + "a".repeat(64) };
const BASE: ImageConfig = {
    architecture: "amd64",
    os: "linux",
    config: { Env: ["PATH=/bin"], Cmd: ["/bin/sh"], Entrypoint: null },
    rootfs: { type: "layers", diff_ids: [] },
};

function configAfter(lines: string[]): NonNullable<ImageConfig["config"]> {
    const text = ["ARG BASE_IMAGE", "FROM ${BASE_IMAGE}", ...lines, ""].join("\n");
    const r = appRecipe(text, "Dockerfile", ARGS, BASE.config?.Env, BASE.config?.WorkingDir);
    return r.apply(BASE, "sha256:" + "b".repeat(64)).config ?? {};
}

test("ENTRYPOINT clears only an inherited CMD: CMD then ENTRYPOINT in one Dockerfile keeps the CMD", () => {
    const both = configAfter(['CMD ["serve"]', 'ENTRYPOINT ["/app/run"]']);
    assert.deepEqual([both.Entrypoint, both.Cmd], [["/app/run"], ["serve"]]);
    // Without a CMD of its own, the base's CMD goes (it was an argument to the old entrypoint).
    const epOnly = configAfter(['ENTRYPOINT ["/app/run"]']);
    assert.deepEqual([epOnly.Entrypoint, epOnly.Cmd], [["/app/run"], null]);
    // ENTRYPOINT then CMD: both set.
    const epThenCmd = configAfter(['ENTRYPOINT ["/app/run"]', "CMD serve --port 8000"]);
    assert.deepEqual([epThenCmd.Entrypoint, epThenCmd.Cmd], [["/app/run"], ["/bin/sh", "-c", "serve --port 8000"]]);
    // Neither: the base's stay.
    const none = configAfter(["ENV X=1"]);
    assert.deepEqual([none.Entrypoint, none.Cmd], [null, ["/bin/sh"]]);
});
