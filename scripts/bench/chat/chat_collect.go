package chat

// collect fills in what the clients received; the readers have ended.
func (l *chatLoad) collect(res *chatLoadResult) {
	var acks []int32
	for seq := range l.n {
		if l.answer[seq].Load() == chatAnswerAck {
			acks = append(acks, latencyMicros(l.answerAt[seq].Load()-l.sentAt[seq].Load()))
		}
	}
	res.Acked, res.Refused = int(l.acked.Load()), int(l.refused.Load())
	res.Unanswered = res.Sent - res.SendErrors - res.Acked - res.Refused
	res.AckLatency = summarizeLatency(acks)
	l.mu.Lock()
	if len(l.refusedBy) > 0 {
		res.RefusedBy = l.refusedBy
	}
	l.mu.Unlock()

	var all []int32
	total := chatGroupResult{Name: "all", MinGot: l.n}
	for g, name := range l.groups {
		gr := chatGroupResult{Name: name, MinGot: l.n}
		var lats []int32
		for _, c := range l.clients {
			if c.group != g {
				continue
			}
			l.collectClient(c, &gr)
			lats = append(lats, c.lat...)
		}
		if gr.Clients == 0 {
			continue
		}
		all = append(all, lats...)
		gr.Latency = summarizeLatency(lats)
		res.Groups = append(res.Groups, gr)
		total.add(gr)
	}
	total.Latency = summarizeLatency(all)
	res.Total = total
}

// collectClient adds one client's receipts to gr.
func (l *chatLoad) collectClient(c *chatClient, gr *chatGroupResult) {
	gr.Clients++
	got, lost := 0, 0
	for seq, n := range c.counts {
		acked := l.answer[seq].Load() == chatAnswerAck
		switch {
		case n > 0:
			got++
			gr.Duplicates += int64(n - 1)
			if !acked {
				gr.Unexpected++
			}
		case acked:
			lost++
		}
	}
	gr.Unexpected += c.unexpected
	gr.Delivered += int64(got)
	gr.Lost += int64(lost)
	gr.Expected += l.acked.Load()
	gr.MinGot, gr.MaxGot = min(gr.MinGot, got), max(gr.MaxGot, got)
	if lost == 0 {
		gr.Complete++
	}
	if c.err != nil {
		gr.Dropped++
		if gr.FirstError == "" {
			gr.FirstError = c.err.Error()
		}
	}
}

// add sums another group into g (not its latency).
func (g *chatGroupResult) add(o chatGroupResult) {
	g.Clients += o.Clients
	g.Expected += o.Expected
	g.Delivered += o.Delivered
	g.Lost += o.Lost
	g.Duplicates += o.Duplicates
	g.Unexpected += o.Unexpected
	g.Complete += o.Complete
	g.Dropped += o.Dropped
	g.MinGot, g.MaxGot = min(g.MinGot, o.MinGot), max(g.MaxGot, o.MaxGot)
	if g.FirstError == "" {
		g.FirstError = o.FirstError
	}
}
