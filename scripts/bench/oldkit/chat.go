package oldkit

import (
	"encoding/json"
	"os"
)

const NameFerret = "FerretDB"

// writeJSONFile writes v as indented JSON.
func WriteJSONFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
