// vcsim for the QL-RF live vSphere tests: govmomi's vCenter simulator (a VPX model) on
// 127.0.0.1, plain HTTP unless -tls, with one fixed user and a PropertyCollector that pages.
//
// The govmomi simulator packaged in Debian bookworm (0.24) ignores RetrieveOptions.maxObjects
// and has no ContinueRetrievePropertiesEx; pagingCollector adds both, the way vCenter behaves:
// at most maxObjects ObjectContents per response and a token for the rest.
//
// Prints one line "VCSIM_URL=<url>" (no credentials) on stdout once serving, then runs until
// SIGTERM / SIGINT or until its stdin is closed (so it never outlives the test process).
// The password is read from the environment variable VCSIM_PASSWORD.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

type pagingCollector struct {
	simulator.PropertyCollector
}

// pending holds what is left of a paged result: the objects and the page size asked for.
type pending struct {
	objects []types.ObjectContent
	size    int32
}

var (
	pagesMu   sync.Mutex
	pages     = map[string]pending{}
	nextToken int
)

// page returns the first size objects and a token for the rest ("" when nothing is left).
func page(objects []types.ObjectContent, size int32) ([]types.ObjectContent, string) {
	if size <= 0 || int(size) >= len(objects) {
		return objects, ""
	}
	pagesMu.Lock()
	defer pagesMu.Unlock()
	nextToken++
	token := "page-" + strconv.Itoa(nextToken)
	pages[token] = pending{objects: objects[size:], size: size}
	return objects[:size], token
}

func take(token string) (pending, bool) {
	pagesMu.Lock()
	defer pagesMu.Unlock()
	rest, ok := pages[token]
	delete(pages, token)
	return rest, ok
}

func (pc *pagingCollector) RetrievePropertiesEx(ctx *simulator.Context, r *types.RetrievePropertiesEx) soap.HasFault {
	res := pc.PropertyCollector.RetrievePropertiesEx(ctx, r)
	body, ok := res.(*methods.RetrievePropertiesExBody)
	if !ok || body.Res == nil || body.Res.Returnval == nil {
		return res
	}
	result := body.Res.Returnval
	result.Objects, result.Token = page(result.Objects, r.Options.MaxObjects)
	return body
}

// ContinueRetrievePropertiesEx returns the next page, as large as the first one.
func (pc *pagingCollector) ContinueRetrievePropertiesEx(ctx *simulator.Context, r *types.ContinueRetrievePropertiesEx) soap.HasFault {
	body := &methods.ContinueRetrievePropertiesExBody{}
	rest, ok := take(r.Token)
	if !ok {
		body.Fault_ = simulator.Fault("unknown or expired token", &types.InvalidArgument{InvalidProperty: "token"})
		return body
	}
	result := types.RetrieveResult{}
	result.Objects, result.Token = page(rest.objects, rest.size)
	body.Res = &types.ContinueRetrievePropertiesExResponse{Returnval: result}
	return body
}

func (pc *pagingCollector) CancelRetrievePropertiesEx(ctx *simulator.Context, r *types.CancelRetrievePropertiesEx) soap.HasFault {
	take(r.Token)
	return &methods.CancelRetrievePropertiesExBody{Res: new(types.CancelRetrievePropertiesExResponse)}
}

// selfSigned makes a fresh P-256 certificate for 127.0.0.1 / localhost (httptest's built-in one
// has a 1024-bit RSA key, which OpenSSL refuses before it even looks at who signed it) and
// writes its PEM to certOut, for a client that wants to trust it.
func selfSigned(certOut string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "vcsim.qlrf.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	if certOut != "" {
		block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		if err := ioutil.WriteFile(certOut, block, 0o644); err != nil {
			return tls.Certificate{}, err
		}
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// encrypt gives the named VMs the config.keyId an encrypted VM has on vCenter: the simulator has
// no key provider, so VM Encryption cannot be switched on through the API.
func encrypt(names []string) {
	wanted := map[string]bool{}
	for _, name := range names {
		wanted[strings.TrimSpace(name)] = true
	}
	for _, entity := range simulator.Map.All("VirtualMachine") {
		vm, ok := entity.(*simulator.VirtualMachine)
		if !ok || !wanted[vm.Name] || vm.Config == nil {
			continue
		}
		vm.Config.KeyId = &types.CryptoKeyId{
			KeyId:      "5f0e7a3c-2b9d-4c18-8e4f-6a7b8c9d0e1f",
			ProviderId: &types.KeyProviderId{Id: "qlrf-kms"},
		}
		delete(wanted, vm.Name)
	}
	if len(wanted) > 0 {
		log.Fatalf("-encrypted-vms: no VM named %v", wanted)
	}
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("vcsim: ")
	datacenters := flag.Int("dc", 1, "datacenters")
	clusters := flag.Int("cluster", 2, "clusters per datacenter")
	clusterHosts := flag.Int("host", 3, "hosts per cluster")
	standalone := flag.Int("standalone-host", 1, "standalone hosts per datacenter")
	machines := flag.Int("vm", 40, "VMs per resource pool (one root pool per cluster and per standalone host)")
	datastores := flag.Int("ds", 1, "datastores")
	username := flag.String("username", "qlrf-reader", "the only user Login accepts")
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	useTLS := flag.Bool("tls", false, "serve HTTPS with a self-signed certificate")
	certOut := flag.String("cert-out", "", "with -tls: write the certificate (PEM) to this file")
	methodDelay := flag.String("method-delay", "", "Method=milliseconds[,...]: answer these SOAP methods late")
	encryptedVMs := flag.String("encrypted-vms", "", "name[,...]: VMs whose config carries a VM Encryption key id")
	flag.Parse()

	password := os.Getenv("VCSIM_PASSWORD")
	if password == "" {
		log.Fatal("VCSIM_PASSWORD is not set")
	}

	var tlsConfig *tls.Config
	if *useTLS {
		cert, err := selfSigned(*certOut)
		if err != nil {
			log.Fatal(err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}

	model := simulator.VPX()
	model.Datacenter = *datacenters
	model.Cluster = *clusters
	model.ClusterHost = *clusterHosts
	model.Host = *standalone
	model.Machine = *machines
	model.Datastore = *datastores
	if *methodDelay != "" {
		model.DelayConfig.MethodDelay = map[string]int{}
		for _, item := range strings.Split(*methodDelay, ",") {
			parts := strings.SplitN(item, "=", 2)
			ms, err := strconv.Atoi(strings.TrimSpace(parts[len(parts)-1]))
			if len(parts) != 2 || err != nil {
				log.Fatalf("-method-delay: %q is not Method=milliseconds", item)
			}
			model.DelayConfig.MethodDelay[strings.TrimSpace(parts[0])] = ms
		}
	}
	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	if *encryptedVMs != "" {
		encrypt(strings.Split(*encryptedVMs, ","))
	}

	original := simulator.Map.Get(model.ServiceContent.PropertyCollector).(*simulator.PropertyCollector)
	collector := &pagingCollector{}
	collector.Self = original.Self
	simulator.Map.Put(collector)

	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*username, password)}
	if tlsConfig != nil {
		model.Service.TLS = tlsConfig
	}
	server := model.Service.NewServer()

	shown := *server.URL
	shown.User = nil
	fmt.Printf("VCSIM_URL=%s\n", shown.String())
	os.Stdout.Sync()

	done := make(chan struct{}, 2)
	go func() {
		signals := make(chan os.Signal, 1)
		signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
		<-signals
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(ioutil.Discard, os.Stdin)
		done <- struct{}{}
	}()
	<-done
	// Not server.Close(): it waits for requests in flight, and a -method-delay one may be asleep.
	model.Remove() // the datastore directories in $TMPDIR
	os.Exit(0)
}
