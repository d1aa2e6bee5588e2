// Package mongodb is what onair's stores (rooms and its sub-packages, chat) share on top
// of the MongoDB driver: which errors mean the server is away (Unavailable) or a unique
// key is taken (IsDup), and Wrap to say so in an error.
package mongodb
