/**
 * The policy pack as the Pulumi CLI runs it: `policy/` started with @pulumi/pulumi's
 * run-policy-pack (ts-node, type-checked, cwd = the pack directory, modules from the root
 * node_modules), which serves the Analyzer gRPC service and prints its port. The test is the
 * engine's side: GetAnalyzerInfo (the pack's name, policies and enforcement levels) and Analyze on
 * a Deployment with a tagged image (violation) and one by digest (none).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import { spawn } from "node:child_process";
import * as grpc from "@grpc/grpc-js";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import { AnalyzerClient } from "@pulumi/pulumi/proto/analyzer_grpc_pb";
import { AnalyzeRequest, AnalyzerResourceOptions, EnforcementLevel } from "@pulumi/pulumi/proto/analyzer_pb";
import { policies } from "../../policy/policies";

const root = path.resolve(__dirname, "../..");

function deployment(image: string): Record<string, unknown> {
    return {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: "web", namespace: "emr-uat" },
        spec: {
            selector: { matchLabels: { app: "web" } },
            template: {
                metadata: { labels: { app: "web" } },
                spec: {
                    securityContext: { runAsNonRoot: true },
                    containers: [
                        {
                            name: "web",
                            image,
                            readinessProbe: { httpGet: { path: "/healthz", port: 8000 } },
                            resources: { requests: { cpu: "250m", memory: "256Mi" }, limits: { cpu: "1", memory: "512Mi" } },
                        },
                    ],
                },
            },
        },
    };
}

test("the pack starts the way Pulumi starts it and answers the engine's Analyzer calls", { timeout: 120_000 }, async () => {
    const runner = require.resolve("@pulumi/pulumi/cmd/run-policy-pack", { paths: [path.join(root, "policy")] });
    const child = spawn(process.execPath, [runner, "127.0.0.1:1", "."], { cwd: path.join(root, "policy"), stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    try {
        const port = await new Promise<number>((resolve, reject) => {
            let out = "";
            child.stdout.on("data", (d) => {
                out += d;
                const m = /^(\d+)\s*$/m.exec(out);
                if (m) resolve(Number(m[1]));
            });
            child.on("exit", (code) => reject(new Error(`policy pack exited with ${code} before serving:\n${stderr}`)));
        });
        const client = new AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
        const info = await new Promise<import("@pulumi/pulumi/proto/analyzer_pb").AnalyzerInfo>((res, rej) =>
            client.getAnalyzerInfo(new Empty(), (e, r) => (e ? rej(e) : res(r))),
        );
        assert.equal(info.getName(), "thinlayer");
        const level = (l: EnforcementLevel) => (l === EnforcementLevel.MANDATORY ? "mandatory" : l === EnforcementLevel.ADVISORY ? "advisory" : String(l));
        assert.deepEqual(
            info.getPoliciesList().map((p) => [p.getName(), level(p.getEnforcementlevel())]),
            policies.map((p) => [p.name, p.enforcementLevel]),
        );

        const analyze = (props: Record<string, unknown>) => {
            const req = new AnalyzeRequest();
            req.setType("kubernetes:apps/v1:Deployment");
            req.setName("app-web");
            req.setUrn("urn:pulumi:uat::thinlayer::thinlayer:kubernetes:Release$kubernetes:apps/v1:Deployment::app-web");
            req.setProperties(Struct.fromJavaScript(props as never));
            req.setOptions(new AnalyzerResourceOptions());
            return new Promise<string[]>((res, rej) =>
                client.analyze(req, (e, r) =>
                    e ? rej(e) : res(r.getDiagnosticsList().map((d) => `${d.getPolicyname()} ${level(d.getEnforcementlevel())}: ${d.getMessage()}`)),
                ),
            );
        };
        const tagged = await analyze(deployment("thinlayer/app:latest"));
        assert.equal(tagged.length, 1, tagged.join("\n"));
        assert.match(
            tagged[0],
            /^workload-image-by-digest mandatory: .*\nDeployment emr-uat\/web: container "web" image "thinlayer\/app:latest" is not pinned by digest/s,
        );
        assert.deepEqual(await analyze(deployment(`thinlayer/app@sha256:${"b".repeat(64)}`)), []);
        client.close();
    } finally {
        child.kill();
    }
});
