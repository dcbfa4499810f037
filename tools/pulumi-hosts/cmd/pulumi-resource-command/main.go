// pulumi-resource-command is a stand-in for the `command` provider plugin of pulumi-command v1.2.1
// (command:local:Command and command:local:run). See internal/command for what it does and why.
package main

import (
	"flag"
	"fmt"
	"os"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"

	"thinlayer.local/pulumi-hosts/internal/command"
	"thinlayer.local/pulumi-hosts/internal/pluginserve"
)

func main() {
	showVersion := flag.Bool("version", false, "print the provider version and exit")
	flag.String("tracing", "", "accepted for compatibility; tracing is not emitted")
	flag.Parse()
	if *showVersion {
		fmt.Println(command.Version)
		return
	}
	engine := flag.Arg(0)
	err := pluginserve.Run(engine, func(srv *grpc.Server) error {
		pulumirpc.RegisterResourceProviderServer(srv, command.New(engine))
		return nil
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %s\n", err)
		os.Exit(1)
	}
}
