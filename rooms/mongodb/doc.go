// Package mongodb is what onair's stores (rooms and its sub-packages, chat) share on top
// of the MongoDB driver: which errors mean the server is away (Unavailable) or a unique
// key is taken (IsDup), Wrap to say so in an error, and index creation.
//
// It is also the one place that works around the embedded server of `make run` and the
// tests, FerretDB 1.24, where doing so costs MongoDB 7+ nothing:
//
//   - A createIndexes of several indexes that all exist already drops the connection:
//     CreateIndexes creates them one at a time.
//   - A duplicate key caused by an update comes back as code 1 ("UNIQUE constraint
//     failed"), not 11000: IsDup accepts both.
//   - The distinct command fails with a time limit: Distinct is a find with a projection.
//
// Everything else the embedded server lacks (transactions, TTL, text and partial indexes,
// change streams, $lookup, arrayFilters, $elemMatch on sub-documents, conditional $pull,
// atomic concurrent updates of one document) the stores do not use: they are designed
// without it, the same way on both servers. rooms/doc.go lists those rules.
package mongodb
