package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"onair/chat"
	"onair/media"
	"onair/media/hls"
	"onair/media/record"
	"onair/media/rtmp"
	"onair/rooms"
	"onair/rooms/audit"
	"onair/rooms/cluster"
	"onair/rooms/oidc"
	"onair/rooms/uploads"
	"onair/rooms/webhook"
	"onair/storage"
	"onair/storage/local"
	"onair/storage/s3"
	"onair/web"
)

// app is onair wired together from the config.
type app struct {
	cfg      config
	log      *slog.Logger
	nodeID   string
	mongo    *mongo.Client
	cluster  *cluster.Registry // nil without MongoDB (cluster.go)
	notices  sync.WaitGroup    // chat notices being posted (systemMessage)
	hub      *media.Hub
	hls      *hls.Server
	rooms    *rooms.Service      // nil without MongoDB
	chat     *chat.Hub           // nil without MongoDB
	audit    *audit.Log          // nil without MongoDB (events.go)
	webhooks *webhook.Dispatcher // nil without MongoDB (events.go)
	recorder *record.Recorder
	ledger   *rooms.RecordingLedger // nil without recordings (recordings.go)
	uploads  *uploads.Service       // nil without MongoDB (uploads.go)
	store    storage.Store          // nil without MongoDB: recordings need broadcasts to attach to
	rtmp     *rtmp.Server
	web      *web.Server
	metrics  *metrics
	ready    *readiness
}

func newApp(ctx context.Context, cfg config, log *slog.Logger, keys media.StaticKeys) (*app, error) {
	a := &app{cfg: cfg, log: log}
	a.metrics = newMetrics(a)
	a.ready = &readiness{app: a}
	var err error
	if a.nodeID, err = nodeID(cfg); err != nil {
		return nil, err
	}
	var outputs []media.Output
	resolver := resolvers{keys}
	webCfg := web.Config{
		Logger:              log,
		ReadHeaderTimeout:   cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:         cfg.HTTP.ReadTimeout,
		WriteTimeout:        cfg.HTTP.WriteTimeout,
		IdleTimeout:         cfg.HTTP.IdleTimeout,
		MaxHeaderBytes:      cfg.HTTP.MaxHeaderBytes,
		PublicURL:           cfg.HTTP.PublicURL,
		RTMPURL:             cfg.RTMP.PublicURL,
		RTMPApp:             cfg.RTMP.App,
		RTMPSURL:            cfg.RTMP.TLSPublicURL,
		MaxLadderKbps:       cfg.RTMP.MaxLadderKbps,
		TrustProxy:          cfg.HTTP.TrustProxy,
		HSTS:                hstsMaxAge(cfg.HTTP.HSTSMaxAge),
		AllowedPageOrigins:  cfg.HTTP.AllowedOrigins,
		EmbedFrameAncestors: cfg.HTTP.EmbedFrameAncestors,
		Ready:               a.ready.check,
	}
	if _, port, err := net.SplitHostPort(cfg.RTMP.Addr); err == nil {
		webCfg.RTMPPort = port
	}
	if _, port, err := net.SplitHostPort(cfg.RTMP.TLSAddr); err == nil {
		webCfg.RTMPSPort = port
	}

	if cfg.Mongo.URI != "" {
		if err := a.connectMongo(); err != nil {
			return nil, err
		}
		db := a.mongo.Database(cfg.Mongo.Database)
		if err := a.newCluster(db); err != nil {
			return nil, err
		}
		store, err := a.objectStore(ctx)
		if err != nil {
			return nil, err
		}
		a.store = store
		webCfg.Recordings, webCfg.ClipObjects = store, store
		if ls, ok := store.(*local.Store); ok {
			webCfg.Storage = ls.Handler()
		}
		if err := a.newEvents(db); err != nil {
			return nil, err
		}
		a.chat, err = chat.New(chat.Config{
			Logger: log, DB: db, NodeID: a.nodeID, Actions: chatActions{a},
			// web checks the Origin of websocket upgrades against its own rules first.
			CheckOrigin: func(*http.Request) bool { return true },
			HistorySize: cfg.Chat.History, MaxLength: cfg.Chat.MaxLength,
			RateLimit: cfg.Chat.RateLimit, RatePer: cfg.Chat.RatePer,
			FlushDelay: cfg.Chat.FlushDelay,
			Admit:      a.chatAdmit, AdmitInterval: cfg.Chat.AdmitInterval,
		})
		if err != nil {
			return nil, err
		}
		a.rooms, err = rooms.New(rooms.Config{
			DB: db, Logger: log, Cluster: a.cluster, SessionTTL: cfg.Auth.SessionTTL,
			SignUpLimit:   rooms.RateLimit{Failures: signUpLimit(cfg.Auth.SignUpLimit), Window: cfg.Auth.SignUpWindow},
			DrainTimeout:  cfg.Shutdown.Timeout * 4 / 5,
			Stopper:       rooms.StreamStopperFunc(func(name string, reason error) bool { return stopStream(a.hub, name, reason) }),
			Objects:       store,
			RetentionDays: cfg.Recordings.RetentionDays,
			OnLive:        a.streamStarted,
			OnEnded:       a.streamEnded,
			OnRecording:   a.recordingReady,
			OnRoomCreated: a.roomCreated,
			OnRoomDeleted: a.roomDeleted,
			OnClip:        a.clipCreated,
			ReservedSlugs: keys.Names(),
			Audit:         a.audit,
		})
		if err != nil {
			return nil, err
		}
		if err := a.newUploads(db, store); err != nil {
			return nil, err
		}
		webCfg.Uploads = a.uploads
		outputs = append(outputs, roomStreams{a.rooms})
		resolver = append(resolver, roomStreams{a.rooms})
		if cfg.Recordings.Enabled {
			if err := a.newRecorder(db, store); err != nil {
				return nil, err
			}
			webCfg.FromStart = true
		}
		webCfg.Rooms, webCfg.Chat, webCfg.OriginNodes = a.rooms, a.chat, a.rooms
		webCfg.Audit, webCfg.Webhooks, webCfg.Cluster = a.audit, a.webhooks, a.cluster
		if cfg.Auth.OIDCIssuer != "" {
			webCfg.OIDC, err = oidc.New(oidc.Config{
				Issuer: cfg.Auth.OIDCIssuer, ClientID: cfg.Auth.OIDCClientID, ClientSecret: cfg.Auth.OIDCClientSecret,
			})
			if err != nil {
				return nil, err
			}
			webCfg.OIDCName = cfg.Auth.OIDCName
		}
	} else {
		log.Warn("mongo.uri is not set: serving the configured streams only, without accounts, rooms or chat")
	}

	// HLS writes each run's log; the recorder, when there is one, keeps the recorded runs'.
	hlsCfg := hls.Config{
		Logger:          log,
		SegmentDuration: cfg.HLS.SegmentDuration,
		PartDuration:    cfg.HLS.PartDuration,
		DVRWindow:       cfg.HLS.DVRWindow,
		Dir:             runsDir(cfg),
		ChunkSize:       cfg.Recordings.ChunkSize,
		EndGrace:        cfg.HLS.EndGrace,
	}
	if a.recorder != nil {
		hlsCfg.Archive = a.recorder
	}
	if a.hls, err = hls.New(hlsCfg); err != nil {
		return nil, err
	}
	webCfg.HLS, webCfg.LiveClips = a.hls, a.hls
	outputs = append([]media.Output{a.hls}, outputs...)

	hubCfg := media.HubConfig{
		Logger:        log,
		Outputs:       outputs,
		TakeoverAfter: cfg.RTMP.TakeoverAfter,
		IdleTimeout:   cfg.RTMP.IdleTimeout,
	}
	if a.rooms != nil {
		hubCfg.Claims = roomStreams{a.rooms} // one publisher per stream across the nodes
	}
	a.hub = media.NewHub(hubCfg)
	webCfg.Hub = a.hub
	a.rtmp, err = rtmp.New(rtmp.Config{
		Logger:                   log,
		Hub:                      a.hub,
		Resolver:                 resolver,
		App:                      cfg.RTMP.App,
		SetupTimeout:             cfg.RTMP.SetupTimeout,
		ReadTimeout:              cfg.RTMP.IdleTimeout,
		MaxConnections:           cfg.RTMP.MaxConnections,
		MaxConnectionsPerAddress: cfg.RTMP.MaxConnectionsPerAddress,
		MaxSetupConnections:      cfg.RTMP.MaxSetupConnections,
		MaxMessageSize:           cfg.RTMP.MaxMessageSize,
		ReadInterval:             cfg.RTMP.ReadInterval,
	})
	if err != nil {
		return nil, err
	}
	a.web, err = web.New(webCfg)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// connectMongo creates the client; the driver connects lazily and reconnects by itself.
func (a *app) connectMongo() error {
	opts := options.Client().ApplyURI(a.cfg.Mongo.URI).SetAppName("onair").
		SetServerSelectionTimeout(3 * time.Second).SetConnectTimeout(3 * time.Second).
		SetMonitor(a.metrics.mongoMonitor())
	c, err := mongo.Connect(opts)
	if err != nil {
		return fmt.Errorf("mongo.uri %s: %w", redactURI(a.cfg.Mongo.URI), err)
	}
	a.mongo = c
	return nil
}

// objectStore builds the configured recordings backend.
func (a *app) objectStore(ctx context.Context) (storage.Store, error) {
	sc := a.cfg.Storage
	if sc.Backend == "s3" {
		store, err := s3.New(ctx, s3.Config{
			Endpoint: sc.S3Endpoint, Region: sc.S3Region, Bucket: sc.S3Bucket, Prefix: sc.S3Prefix,
			PathStyle: sc.S3PathStyle, AccessKey: sc.S3AccessKey, SecretKey: sc.S3SecretKey, Logger: a.log,
			Observe: a.metrics.observeStorage,
		})
		if err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
		return store, nil
	}
	dir := sc.LocalDir
	if dir == "" {
		dir = filepath.Join(a.cfg.Data.Dir, "objects")
	}
	secret, err := localSecret(a.cfg.Data.Dir)
	if err != nil {
		return nil, err
	}
	store, err := local.New(local.Config{Root: dir, BaseURL: strings.TrimSuffix(a.cfg.HTTP.PublicURL, "/"), Secret: secret, Logger: a.log})
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return store, nil
}

// prepareStorage does the start-up work on the object store that can wait for it: bucket
// creation and the lifecycle rule.
func (a *app) prepareStorage(ctx context.Context, store storage.Store) error {
	s3store, ok := store.(*s3.Store)
	if !ok {
		return nil
	}
	if a.cfg.Storage.S3CreateBucket {
		if err := s3store.EnsureBucket(ctx); err != nil {
			return err
		}
	}
	if a.cfg.Recordings.LifecycleRule {
		return s3store.SetExpiration(ctx, s3.Expiration{Prefix: storage.RecordingsPrefix, Days: a.cfg.Recordings.RetentionDays})
	}
	return nil
}

// recorded attaches a finished recording to its broadcast.
func (a *app) recorded(ctx context.Context, rec record.Recording) error {
	doc := rooms.Recording{
		Status: rooms.RecordingReady, Key: rec.Key, Prefix: path.Dir(rec.Key) + "/", ContentType: rec.ContentType,
		Size: rec.Size, InitSize: rec.InitSize, DurationMS: rec.Duration.Milliseconds(),
		Recovered: rec.Recovered, Completed: time.Now().UTC().Truncate(time.Millisecond),
		Segments: replaySegments(rec.Segments),
	}
	err := a.rooms.AttachRecording(ctx, rec.StreamID, doc, rec.EndedAt)
	if errors.Is(err, rooms.ErrNotFound) && a.roomGone(ctx, rec.RoomID) {
		// The room was deleted while it recorded (by its owner, an admin's take-down, or
		// with its account): its recordings went with it, and so does this one.
		if err := a.store.Delete(ctx, rec.Key); err != nil {
			return fmt.Errorf("delete the recording of a deleted room: %w", err)
		}
		a.log.Info("recording of a deleted room deleted", "key", rec.Key, "run_id", rec.StreamID)
		return nil
	}
	if errors.Is(err, rooms.ErrNotFound) && time.Since(rec.EndedAt) > time.Minute {
		// The broadcast document was never written (or its room was deleted): the object
		// stays under the room's prefix for cleanup; retrying cannot help.
		a.log.Warn("recording has no broadcast to attach to", "key", rec.Key, "run_id", rec.StreamID)
		return nil
	}
	return err
}

// roomGone reports whether owner names a room that no longer exists (false for a stream
// of the config file, which has no room, and while the room cannot be read).
func (a *app) roomGone(ctx context.Context, owner string) bool {
	if _, err := bson.ObjectIDFromHex(owner); err != nil {
		return false
	}
	_, err := a.rooms.RoomByID(ctx, owner)
	return errors.Is(err, rooms.ErrNotFound)
}

func (a *app) systemMessage(r rooms.Room, text string) {
	if a.chat == nil {
		return
	}
	a.notices.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.chat.System(ctx, chatRoomOf(r), text); err != nil {
			a.log.Warn("chat notice not posted", "room", r.Slug, "err", err)
		}
	})
}

func chatRoomOf(r rooms.Room) chat.Room {
	c := chat.Room{ID: r.ID, Slug: r.Slug, Title: r.Title, OwnerID: r.Owner.ID, Stream: r.StreamName()}
	for _, m := range r.Moderators {
		c.Moderators = append(c.Moderators, m.ID)
	}
	return c
}

// chatAdmit tells chat which of its sockets' users may still be in their rooms (private
// rooms' invitations).
func (a *app) chatAdmit(ctx context.Context, seats []chat.Seat) ([]bool, error) {
	in := make([]rooms.Seat, len(seats))
	for i, st := range seats {
		in[i] = rooms.Seat{RoomID: st.RoomID, UserID: st.UserID, Admin: st.Admin}
	}
	return a.rooms.Admitted(ctx, in)
}

// ensureIndexes retries until MongoDB answers, saying so clearly while it does not.
func (a *app) ensureIndexes(ctx context.Context) {
	wait := time.Second
	for {
		err := a.cluster.EnsureIndexes(ctx)
		if err == nil {
			err = a.rooms.EnsureIndexes(ctx)
		}
		if err == nil {
			err = a.chat.EnsureIndexes(ctx)
		}
		if err == nil {
			err = a.audit.EnsureIndexes(ctx)
		}
		if err == nil {
			err = a.webhooks.EnsureIndexes(ctx)
		}
		if err == nil {
			err = a.uploads.EnsureIndexes(ctx)
		}
		if err == nil && a.ledger != nil {
			err = a.ledger.EnsureIndexes(ctx)
		}
		if err == nil {
			a.log.Info("MongoDB ready", "uri", redactURI(a.cfg.Mongo.URI), "database", a.cfg.Mongo.Database)
			return
		}
		a.log.Error("MongoDB is unreachable; accounts, rooms and chat answer 503 until it is back. Retrying.",
			"uri", redactURI(a.cfg.Mongo.URI), "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// run starts every part and blocks until ctx ends and they have stopped.
func (a *app) run(ctx context.Context, ls *listeners) error {
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	runPart := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil {
				errc <- fmt.Errorf("%s: %w", name, err)
				stop()
			}
		}()
	}
	stopEvents, stopCluster := func() {}, func() {}
	if a.rooms != nil {
		stopCluster = a.startCluster(ctx)
		go a.ensureIndexes(ctx)
		if err := a.prepareStorage(ctx, a.store); err != nil {
			a.log.Error("object storage not ready; recordings are spooled on disk until it is", "err", err)
		}
		if a.recorder != nil {
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			if err := a.recorder.Recover(rctx); err != nil {
				a.log.Error("recordings left by a crash not recovered yet; next start tries again", "err", err)
			}
			cancel()
			// Recordings may use most of the shutdown time to finish their uploads.
			finishBy := a.cfg.Shutdown.Timeout * 4 / 5
			runPart("recorder", func(ctx context.Context) error { return a.recorder.Run(ctx, finishBy) })
		}
		// Chat outlives the broadcasts ending at shutdown, so that their "stream ended"
		// notices reach the sockets before chat closes them.
		chatCtx, stopChat := context.WithCancel(context.WithoutCancel(ctx))
		runPart("rooms", func(ctx context.Context) error {
			defer stopChat()
			err := a.rooms.Run(ctx)
			a.notices.Wait()
			return err
		})
		stopEvents = a.startEvents(ctx)
		runPart("chat", func(context.Context) error { return a.chat.Run(chatCtx) })
		runPart("viewers", a.pumpViewers)
		runPart("uploads", func(ctx context.Context) error { a.uploads.Run(ctx); return nil })
	}
	runPart("hub", a.hub.Run)
	runPart("hls", a.hls.Run)
	a.serve(runPart, ls)
	a.ready.listening.Store(true)

	<-ctx.Done()
	a.ready.listening.Store(false)
	a.log.Info("shutting down: no new publishers; ending streams, finishing recordings, closing sockets",
		"deadline", a.cfg.Shutdown.Timeout)
	stopped := make(chan struct{})
	go func() {
		wg.Wait()
		close(stopped)
	}()
	select {
	case <-stopped:
		a.log.Info("shut down cleanly")
	case <-time.After(a.cfg.Shutdown.Timeout):
		a.log.Warn("shutdown deadline passed; what is unfinished resumes at next start", "deadline", a.cfg.Shutdown.Timeout)
	}
	stopEvents() // after the parts, whose last actions and events it stores
	stopCluster()
	if a.mongo != nil {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = a.mongo.Disconnect(dctx)
		cancel()
	}
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// hstsMaxAge is http.hsts_max_age as web takes it: there 0 means the default and a
// negative duration no header.
func hstsMaxAge(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// signUpLimit is auth.signup_limit as rooms takes it: there 0 means the default and a
// negative number no limit.
func signUpLimit(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// resolvers tries each key resolver in turn: the config's static streams, then rooms.
type resolvers []media.KeyResolver

func (rs resolvers) ResolveKey(ctx context.Context, key string) (media.Route, error) {
	var firstErr error
	for _, r := range rs {
		route, err := r.ResolveKey(ctx, key)
		if err == nil {
			return route, nil
		}
		if !errors.Is(err, media.ErrUnknownKey) && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return media.Route{}, firstErr
	}
	return media.Route{}, media.ErrUnknownKey
}

// nodeID is node.id, or one generated at first start and kept in data.dir, so that a
// restarted node recognises the broadcasts it left open.
func nodeID(cfg config) (string, error) {
	if cfg.Node.ID != "" {
		return cfg.Node.ID, nil
	}
	return persistentRandom(filepath.Join(cfg.Data.Dir, "node-id"), func(b []byte) string {
		host, _ := os.Hostname()
		return strings.ToLower(host) + "-" + hex.EncodeToString(b[:4])
	})
}

// localSecret signs the local storage backend's URLs; it must survive restarts.
func localSecret(dataDir string) ([]byte, error) {
	s, err := persistentRandom(filepath.Join(dataDir, "storage-secret"), func(b []byte) string { return hex.EncodeToString(b) })
	return []byte(s), err
}

// persistentRandom returns the value kept in path, or makes one from 32 random bytes.
func persistentRandom(path string, format func([]byte) string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	v := format(raw)
	if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("save %s: %w", path, err)
	}
	return v, nil
}

// redactURI drops the password from a MongoDB URI for logs and errors.
func redactURI(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "(unparseable uri)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u.String()
}
