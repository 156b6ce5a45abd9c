// Command fogwan runs a WAN emulator (package wanem) as a process: TCP
// links between sites with a delay, jitter and bandwidth per pair of
// sites, and an HTTP control endpoint to cut, heal and change delays while
// it runs.
//
//	fogwan --link paris-n1=*:paris,listen=0.0.0.0:7101,target=n1:7071 \
//	       --link rennes-n2=*:rennes,listen=0.0.0.0:7102,target=n2:7071 \
//	       --source 10.0.1.0/24=paris --source 10.0.2.0/24=rennes \
//	       --delay paris:rennes=25ms --control-addr 127.0.0.1:7079
//
// A link is NAME=FROM:TO: connections it accepts come from site FROM (or,
// with FROM *, from the site of their source address, --source) and go to
// site TO. Options after it: listen=ADDR, target=ADDR, and delay=D,
// jitter=D, bandwidth=BYTES_PER_SEC, which set the pair FROM-TO both ways.
// --config FILE reads flags from a file, one a line without the leading
// dashes; # starts a comment. See wanem.Proxy.Handler for the control
// endpoint.
package main
