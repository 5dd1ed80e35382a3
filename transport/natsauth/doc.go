// Package natsauth decides, for the NATS server that vellumd embeds, who may
// connect and what each connection may publish and subscribe to, so that
// nobody reaches around the service: a client may publish only requests to
// the service and receive only on its own, unguessable inbox; vellumd's own
// connections and the administrator may do more.
//
// It plugs into nats-server as its CustomClientAuthentication and is
// described in docs/nats.md ("Connecting").
package natsauth
