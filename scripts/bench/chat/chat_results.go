package chat

import (
	"onair/scripts/bench/oldkit"
	"time"
)

// Protocols the load generator speaks.
const (
	chatProtoOnair    = "onair"    // onair's JSON frames on /api/v1/rooms/{slug}/chat
	chatProtoSocketIO = "socketio" // Engine.IO v4 / Socket.IO v5 over a websocket
)

// chatLoadSpec tells the load generator (`bench chat -worker`) what to do; the parent
// sends it as the first line of the worker's stdin.
type chatLoadSpec struct {
	Proto string `json:"proto"`
	// Room is the socket.io room the clients join (onair's room is in the URLs).
	Room string `json:"room"`
	// Groups are the reading clients (anonymous), by where they connect.
	Groups []chatGroupSpec `json:"groups"`
	// Senders post the messages, in turn; each is also a reading client (group "senders").
	Senders []chatSenderSpec `json:"senders"`
	// Rate is messages per second over all senders, for Duration.
	Rate     float64       `json:"rate"`
	Duration time.Duration `json:"duration"`
	// Warmup: the senders post at Rate this long once every client got a warm-up message
	// (at most WarmupMax in all), before the measured window.
	Warmup    time.Duration `json:"warmup"`
	WarmupMax time.Duration `json:"warmup_max"`
	// Drain bounds the wait for the last deliveries and acks after the last send.
	Drain time.Duration `json:"drain"`
	// Join bounds connecting and joining all the clients.
	Join time.Duration `json:"join"`
	// TextBytes is the length of each message's text.
	TextBytes int `json:"text_bytes"`
	// DialParallel is how many clients connect at once.
	DialParallel int `json:"dial_parallel"`
}

type chatGroupSpec struct {
	Name    string `json:"name"`
	URL     string `json:"url"` // ws://…
	Clients int    `json:"clients"`
}

type chatSenderSpec struct {
	URL    string `json:"url"`
	Cookie string `json:"cookie,omitempty"` // the session cookie (onair)
}

// chatLoadResult is what the load generator measured.
type chatLoadResult struct {
	Clients int `json:"clients"` // receiving sockets, senders included
	// Messages posted in the measured window, acknowledged by the server, refused (an
	// error answer, by code) and never answered within the drain time.
	Sent        int            `json:"sent"`
	Acked       int            `json:"acked"`
	Refused     int            `json:"refused"`
	RefusedBy   map[string]int `json:"refused_by,omitempty"`
	Unanswered  int            `json:"unanswered"`
	SendErrors  int            `json:"send_errors"`
	AckLatency  chatLatency    `json:"ack_latency"`
	SendSlipMax float64        `json:"send_slip_max_ms"` // latest send behind schedule
	// SendS is from the first to the last send; WindowS from the first send until every
	// delivery and ack was in (or the drain time ran out).
	SendS      float64 `json:"send_s"`
	WindowS    float64 `json:"window_s"`
	Drained    bool    `json:"drained"`
	WarmupS    float64 `json:"warmup_s"`
	WarmupSent int     `json:"warmup_sent"`
	JoinS      float64 `json:"join_s"`
	// Groups are the receivers by group; Total is all of them.
	Groups []chatGroupResult `json:"groups"`
	Total  chatGroupResult   `json:"total"`
}

// chatGroupResult is what a group of clients received of the acknowledged messages.
type chatGroupResult struct {
	Name    string `json:"name"`
	Clients int    `json:"clients"`
	// Expected is acknowledged messages × clients; Delivered counts each (client,
	// message) once; Lost = Expected - Delivered.
	Expected   int64  `json:"expected"`
	Delivered  int64  `json:"delivered"`
	Lost       int64  `json:"lost"`
	Duplicates int64  `json:"duplicates"`
	Unexpected int64  `json:"unexpected"` // messages received that were not acknowledged
	Complete   int    `json:"clients_complete"`
	Dropped    int    `json:"clients_disconnected"`
	FirstError string `json:"first_error,omitempty"`
	// MinGot and MaxGot are the fewest and most messages one client received.
	MinGot  int         `json:"min_per_client"`
	MaxGot  int         `json:"max_per_client"`
	Latency chatLatency `json:"latency"`
}

// chatProcUsage is one server process's CPU and memory during a measurement.
type chatProcUsage struct {
	Name string `json:"name"`
	Pid  int    `json:"pid"`
	// Idle: with every client connected, before any message.
	IdleCPUPercent float64 `json:"idle_cpu_pct_of_core"`
	IdleRSSMB      float64 `json:"idle_rss_mb"`
	// Window: the measured window (first send to last delivery).
	CPUSeconds float64 `json:"cpu_s"`
	CPUPercent float64 `json:"cpu_pct_of_core"`
	RSSMeanMB  float64 `json:"rss_mean_mb"`
	RSSMaxMB   float64 `json:"rss_max_mb"`
}

// chatServerResult is one server under the load.
type chatServerResult struct {
	Server string         `json:"server"`
	Load   chatLoadResult `json:"load"`
	// WindowS is the parent's view of the window (START to DONE of the worker).
	WindowS float64         `json:"window_s"`
	Procs   []chatProcUsage `json:"procs"`
	// WorkerCPUPercent is the load generator's CPU over the window.
	WorkerCPUPercent float64 `json:"load_generator_cpu_pct_of_core"`
	MachineBusy      float64 `json:"machine_busy_pct"`
	IdleS            float64 `json:"idle_s"`
}

// chatResults is everything `bench chat` measured (.artifacts/bench/chat.json).
type chatResults struct {
	Command  string             `json:"command"`
	Started  string             `json:"started"`
	Finished string             `json:"finished"`
	Machine  oldkit.MachineInfo `json:"machine"`
	Node     string             `json:"node"`
	SocketIO string             `json:"socket_io"`
	Onair    oldkit.BinaryInfo  `json:"onair"`
	Load     chatLoadParams     `json:"load"`
	Servers  []chatServerResult `json:"servers"`
	Verdicts []chatVerdict      `json:"verdicts"`
	Errors   []string           `json:"errors,omitempty"`
}

// chatLoadParams is the load, as configured.
type chatLoadParams struct {
	Readers   int     `json:"readers"`
	Senders   int     `json:"senders"`
	Rate      float64 `json:"messages_per_s"`
	DurationS float64 `json:"duration_s"`
	WarmupS   float64 `json:"warmup_s"`
	TextBytes int     `json:"text_bytes"`
}

// chatVerdict is one line of a targets table.
type chatVerdict struct {
	Measure string `json:"measure"`
	Onair   string `json:"onair"`
	Peer    string `json:"peer"`
	Ratio   string `json:"ratio"`
	Target  string `json:"target"`
	Verdict string `json:"verdict"`
}

// clusterChatResults is everything `bench cluster-chat` measured.
type clusterChatResults struct {
	Command  string             `json:"command"`
	Started  string             `json:"started"`
	Finished string             `json:"finished"`
	Machine  oldkit.MachineInfo `json:"machine"`
	Onair    oldkit.BinaryInfo  `json:"onair"`
	Load     chatLoadParams     `json:"load"`
	Result   chatServerResult   `json:"result"`
	Verdicts []chatVerdict      `json:"verdicts"`
	Errors   []string           `json:"errors,omitempty"`
}
