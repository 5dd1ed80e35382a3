// Package natsapi serves the engine over NATS request/reply and maps engine
// errors to NATS responses.
package natsapi
