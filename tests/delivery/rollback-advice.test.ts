/**
 * Advice that names a flag names the flag that does it: an image outside the history is pinned
 * with `--image repo@sha256:…` (`--to` only selects releases found in the history).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { deployedReleases, fileSource } from "../../cli/rollback";
import { chooseRelease, parseHistory } from "../../lib/release/rollback";
import { copyExampleApp, evaluateProgram } from "../helpers/diff";
import { ecrUrl } from "../helpers/mocks";

const fixtures = path.resolve(__dirname, "../fixtures/history");

test("--steps with no earlier release in the history: the fix pins an image with --image, not --to", async () => {
    const src = fileSource({ stack: "uat", historyFile: path.join(fixtures, "uat/history.json"), exportsDir: path.join(fixtures, "uat/exports") });
    // Only the first release's updates: nothing was deployed before it.
    const history = parseHistory(await src.history()).filter((h) => h.version <= 2);
    const deployed = await deployedReleases(history, src);
    assert.throws(
        () => chooseRelease(deployed, history, { steps: 1 }, "uat"),
        (e: Error) => {
            assert.match(e.message, /^--steps: got 1; expected none: no release was deployed before the current one/);
            assert.match(e.message, /Fix: read more history, or pin an image directly with --image <repo@sha256:…>$/);
            assert.doesNotMatch(e.message, /--to <repo/);
            return true;
        },
    );
});

test("a digest pin the registry serves under another digest: the fix is the --image command with the served ref", async () => {
    const app = copyExampleApp();
    try {
        const repo = ecrUrl("thinlayer/app");
        const pinned = `${repo}@sha256:${"1".repeat(64)}`;
        const served = `sha256:${"2".repeat(64)}`;
        await assert.rejects(
            evaluateProgram({
                stack: "uat",
                config: { appDir: app.dir, releaseImage: pinned },
                secrets: { secretSettings: ["DJANGO_SECRET_KEY=x"] },
                mocks: { registryImages: { [pinned]: served } },
            }),
            (e: Error) => {
                assert.match(e.message, /thinlayer:releaseImage: got ".*"; expected the digest the registry serves/);
                assert.ok(e.message.includes(`Fix: re-pin what the registry serves: thinlayer rollback --stack <stack> --image ${repo}@${served}`), e.message);
                return true;
            },
        );
    } finally {
        app.cleanup();
    }
});
