/**
 * One settings hash: a release read from outputs without a settingsHash (an export from before the
 * program wrote one) is hashed exactly as the program hashes settings, so it is the same release.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { settingsDigest } from "../../lib/hashing/digest";
import { releaseFromOutputs, releaseTimeline, type DeployedRelease, type Release } from "../../lib/release/rollback";

const REF = `123456789012.dkr.ecr.eu-west-1.amazonaws.com/thinlayer/app@sha256:${"c".repeat(64)}`;
const SETTINGS = { DJANGO_DEBUG: "false", DJANGO_ALLOWED_HOSTS: "emr-uat.example.com", DJANGO_LOG_LEVEL: "INFO" };

function deployed(r: Release | string, version: number): DeployedRelease {
    assert.notEqual(typeof r, "string", String(r));
    return { ...(r as Release), version, startTime: `2026-11-0${version}T10:00:00Z`, message: "", pinned: false };
}

test("the fallback settings hash is the program's settingsDigest", () => {
    const r = releaseFromOutputs({ appImageRef: REF, settings: SETTINGS });
    assert.equal(typeof r, "object", String(r));
    assert.equal((r as Release).settingsHash, settingsDigest(SETTINGS));
});

test("an update with the program's settingsHash output and one without it are one release in the timeline", () => {
    const withHash = releaseFromOutputs({ appImageRef: REF, settings: SETTINGS, settingsHash: settingsDigest(SETTINGS), releaseId: "rel-0123456789ab" });
    const without = releaseFromOutputs({ appImageRef: REF, settings: { ...SETTINGS } });
    const { timeline, current } = releaseTimeline([deployed(without, 1), deployed(withHash, 2)], "uat");
    assert.equal(timeline.length, 1, JSON.stringify(timeline.map((d) => [d.version, d.settingsHash])));
    assert.equal(current.releaseId, "rel-0123456789ab");
});
