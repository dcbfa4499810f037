/**
 * config.ts: every key read once from Pulumi config (strings, as the CLI hands them over), by schema
 * type, validated by the shared parser; errors name the key, the value, what is allowed and the
 * fix; secret values never appear in an error or an output.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { convertConfigValue, parseSecretSettings, readRawConfig } from "../../config";
import { loadProjectSchema } from "../../lib/config";
import { copyExampleApp, evaluateProgram } from "../helpers/diff";

const ROOT = path.resolve(__dirname, "..", "..");

void test("values convert by schema type; what does not convert is left for the parser to report", () => {
    assert.equal(convertConfigValue("integer", "3"), 3);
    assert.equal(convertConfigValue("integer", "three"), "three");
    assert.deepEqual(convertConfigValue("array", '["a=1","b=2"]'), ["a=1", "b=2"]);
    assert.equal(convertConfigValue("array", "a=1"), "a=1");
    assert.equal(convertConfigValue("boolean", "true"), true);
    assert.equal(convertConfigValue("string", "007"), "007");
});

void test("readRawConfig reads every non-secret schema key that is set, never a secret one", () => {
    const schema = loadProjectSchema(ROOT);
    const asked: string[] = [];
    const raw = readRawConfig(schema, (k) => {
        asked.push(k);
        return k === "webReplicas" ? "4" : k === "workers" ? '["w=run"]' : undefined;
    });
    assert.deepEqual(raw, { webReplicas: 4, workers: ["w=run"] });
    assert.deepEqual(
        asked.sort(),
        Object.keys(schema)
            .filter((k) => k !== "secretSettings" && k !== "kubeconfig")
            .sort(),
    );
});

void test("secret settings: names checked, values never echoed", () => {
    assert.deepEqual(parseSecretSettings('["DATABASE_URL=postgres://u:hunter2@db/x"]'), { DATABASE_URL: "postgres://u:hunter2@db/x" });
    assert.deepEqual(parseSecretSettings(undefined), {});
    assert.throws(
        () => parseSecretSettings('["BAD NAME=hunter2"]'),
        (e: Error) => {
            assert.match(e.message, /^thinlayer:secretSettings: got "BAD NAME=…"; expected NAME=VALUE with NAME matching/);
            assert.doesNotMatch(e.message, /hunter2/);
            return true;
        },
    );
});

void test("a bad config value fails the program with the key, the value, what is allowed and the fix", async () => {
    const app = copyExampleApp();
    try {
        await assert.rejects(evaluateProgram({ stack: "uat", config: { appDir: app.dir, webReplicas: "three", builder: "kaniko" } }), (e: Error) => {
            assert.match(e.message, /thinlayer:webReplicas: got "three"; expected an integer\. Fix: set it with pulumi config set thinlayer:webReplicas …/);
            return true;
        });
        await assert.rejects(
            evaluateProgram({ stack: "uat", config: { appDir: app.dir, builder: "kaniko" } }),
            /thinlayer:builder: got "kaniko"; expected auto \| buildx \| docker \| podman \| buildah\. Fix: pick one of the listed builders/,
        );
    } finally {
        app.cleanup();
    }
});

void test("a bad secret setting fails the program without its value; secret values stay out of the outputs", async () => {
    const app = copyExampleApp();
    try {
        await assert.rejects(evaluateProgram({ stack: "uat", config: { appDir: app.dir }, secrets: { secretSettings: ["BAD NAME=hunter2"] } }), (e: Error) => {
            assert.match(e.message, /thinlayer:secretSettings: got "BAD NAME=…"/);
            assert.doesNotMatch(e.message, /hunter2/);
            return true;
        });
        const ok = await evaluateProgram({
            stack: "uat",
            config: { appDir: app.dir },
            secrets: { secretSettings: ["DJANGO_SECRET_KEY=hunter2"], kubeconfig: "apiVersion: v1\n# hunter2" },
        });
        assert.doesNotMatch(JSON.stringify(ok.outputs), /hunter2/);
        const secret = ok.resources.find((r) => r.type === "kubernetes:core/v1:Secret");
        assert.ok(JSON.stringify(secret?.inputs.stringData).includes("4dabf18193072939515e22adb298388d"), "stringData is a Pulumi secret");
        const provider = ok.resources.find((r) => r.type === "pulumi:providers:kubernetes");
        assert.ok(JSON.stringify(provider?.inputs.kubeconfig).includes("4dabf18193072939515e22adb298388d"), "the kubeconfig is a Pulumi secret");
    } finally {
        app.cleanup();
    }
});

void test("bad input found while hashing (a missing Dockerfile) fails the program with the file and the fix", async () => {
    const app = copyExampleApp();
    try {
        await assert.rejects(evaluateProgram({ stack: "uat", config: { appDir: app.dir, baseDockerfile: "Dockerfile.missing" } }), (e: Error) => {
            assert.match(e.message, /Dockerfile\.missing/);
            assert.match(e.message, /Fix: /);
            return true;
        });
    } finally {
        app.cleanup();
    }
});
