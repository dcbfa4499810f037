// pulumi-language-nodejs is a stand-in for the Pulumi engine's Node.js language host of pulumi
// 3.248 (see internal/nodehost). The engine starts it as `pulumi-language-nodejs [flags] <engine
// address>` and reads the port it prints on the first line of stdout.
package main

import (
	"flag"
	"fmt"
	"os"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"

	"thinlayer.local/pulumi-hosts/internal/nodehost"
	"thinlayer.local/pulumi-hosts/internal/pluginserve"
)

func main() {
	tracing := flag.String("tracing", "", "Emit tracing to a Zipkin-compatible tracing endpoint (passed on to the program)")
	runtime := flag.String("runtime", "nodejs", "Runtime for TypeScript programs; only nodejs is supported by this stand-in")
	showVersion := flag.Bool("version", false, "Print the current plugin version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(nodehost.Version)
		return
	}
	if *runtime != "nodejs" {
		fmt.Fprintf(os.Stderr, "error: unsupported runtime: %s (this stand-in runs node only)\n", *runtime)
		os.Exit(1)
	}
	engine := flag.Arg(0)
	err := pluginserve.Run(engine, func(srv *grpc.Server) error {
		pulumirpc.RegisterLanguageRuntimeServer(srv, nodehost.New(engine, *tracing))
		return nil
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: language host RPC stopped serving: %s\n", err)
		os.Exit(1)
	}
}
