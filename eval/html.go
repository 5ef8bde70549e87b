package eval

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// WriteHTML renders the report as one self-contained HTML page (inline CSS
// and SVG, no scripts, no external assets): summary with bootstrap
// intervals, per-class table and F1 bars, confusion-matrix heatmap, learning
// curves from the training log (nil or empty: section omitted),
// reliability diagrams and OOD scores when present.
func (r *Report) WriteHTML(w io.Writer, log []TrainRecord) error {
	var b strings.Builder
	title := "netmamba evaluation"
	if r.Model != "" {
		title += " — " + r.Model
	}
	fmt.Fprintf(&b, `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>%s</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px auto;max-width:1100px;color:#1a1a1a;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555;font-size:13px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-top:14px}
.card{border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:150px}
.card .v{font-size:24px;font-weight:600}.card .l{font-size:12px;color:#555}.card .ci{font-size:12px;color:#777}
table{border-collapse:collapse;font-size:13px}th,td{padding:3px 10px;text-align:right;border-bottom:1px solid #eee}
th{background:#f5f5f5}td:first-child,th:first-child{text-align:left}
.row{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif}
.note{font-size:12px;color:#666;max-width:900px}
</style></head><body>
`, html.EscapeString(title))
	fmt.Fprintf(&b, "<h1>%s</h1>\n<div class=\"meta\">model <b>%s</b> · dataset <b>%s</b> · split <b>%s</b> · seed %d · %d flows · %d classes · %s</div>\n",
		html.EscapeString(title), esc(orDash(r.Model)), esc(orDash(r.Dataset)), esc(orDash(r.Split)), r.Seed, r.Flows, len(r.ClassMap), esc(r.Time))

	// Summary cards.
	b.WriteString("<div class=\"cards\">\n")
	card := func(label string, v float64, iv *Interval) {
		fmt.Fprintf(&b, "<div class=\"card\"><div class=\"l\">%s</div><div class=\"v\">%.4f</div>", esc(label), v)
		if iv != nil {
			fmt.Fprintf(&b, "<div class=\"ci\">95%% CI [%.4f, %.4f]</div>", iv.Low, iv.High)
		}
		b.WriteString("</div>\n")
	}
	var ciA, ciM, ciW *Interval
	if r.CI95 != nil {
		ciA, ciM, ciW = &r.CI95.Accuracy, &r.CI95.MacroF1, &r.CI95.WeightedF1
	}
	card("accuracy", r.Accuracy, ciA)
	card("macro F1", r.MacroF1, ciM)
	card("weighted F1", r.WeightedF1, ciW)
	card("macro precision", r.MacroPrecision, nil)
	card("macro recall", r.MacroRecall, nil)
	card("weighted precision", r.WeightedPrecision, nil)
	card("weighted recall", r.WeightedRecall, nil)
	if r.ECE != nil {
		card("ECE (15 bins)", *r.ECE, nil)
	}
	if r.Temperature != nil {
		card(fmt.Sprintf("ECE at T = %.3f", *r.Temperature), *r.ECECalibrated, nil)
	}
	b.WriteString("</div>\n")
	if r.CI95 != nil {
		fmt.Fprintf(&b, "<p class=\"note\">Intervals: percentile bootstrap, %d resamples of the %d flows, seed %d. Macro averages run over the classes present in the true or predicted labels (scikit-learn semantics, zero division → 0).</p>\n",
			r.CI95.Resamples, r.Flows, r.CI95.Seed)
	}

	// Per-class table and F1 bars.
	b.WriteString("<h2>Per-class scores</h2>\n<div class=\"row\"><table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th><th>predicted</th></tr>\n")
	for _, pc := range r.PerClass {
		fmt.Fprintf(&b, "<tr><td>%d %s</td><td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%d</td><td>%d</td></tr>\n",
			pc.Class, esc(pc.Name), pc.Precision, pc.Recall, pc.F1, pc.Support, pc.Predicted)
	}
	fmt.Fprintf(&b, "<tr><th>macro avg</th><th>%.4f</th><th>%.4f</th><th>%.4f</th><th>%d</th><th></th></tr>\n", r.MacroPrecision, r.MacroRecall, r.MacroF1, r.Flows)
	fmt.Fprintf(&b, "<tr><th>weighted avg</th><th>%.4f</th><th>%.4f</th><th>%.4f</th><th>%d</th><th></th></tr>\n</table>\n", r.WeightedPrecision, r.WeightedRecall, r.WeightedF1, r.Flows)
	b.WriteString(f1Bars(r.PerClass))
	b.WriteString("</div>\n")

	b.WriteString("<h2>Confusion matrix</h2>\n<p class=\"note\">Rows: true class; columns: predicted class. Cell colour: fraction of the row (recall); numbers: flow counts.</p>\n")
	b.WriteString(confusionSVG(r.Confusion, r.ClassMap))

	if len(log) > 0 {
		b.WriteString("<h2>Learning curves</h2>\n<div class=\"row\">\n")
		b.WriteString(learningCurves(log))
		b.WriteString("</div>\n")
	}

	if r.Reliability != nil {
		b.WriteString("<h2>Calibration</h2>\n<p class=\"note\">Reliability diagram: accuracy per confidence bin (15 equal-width bins of the max softmax probability); the diagonal is perfect calibration, red is the gap to it. ECE = Σ (bin share) · |accuracy − confidence|.")
		if r.Temperature != nil {
			fmt.Fprintf(&b, " Temperature %.4f fit by NLL on the validation split.", *r.Temperature)
		}
		b.WriteString("</p>\n<div class=\"row\">\n")
		b.WriteString(reliabilitySVG(r.Reliability, fmt.Sprintf("uncalibrated, ECE %.4f", *r.ECE)))
		if r.ReliabilityCalibrated != nil {
			b.WriteString(reliabilitySVG(r.ReliabilityCalibrated, fmt.Sprintf("T = %.3f, ECE %.4f", *r.Temperature, *r.ECECalibrated)))
		}
		b.WriteString("</div>\n")
	}

	if r.OOD != nil {
		fmt.Fprintf(&b, "<h2>Out-of-distribution detection</h2>\n<p class=\"note\">%d in-distribution flows vs %d flows of held-out classes. OOD is the positive class scored by −confidence. FPR95: fraction of OOD flows accepted at the threshold keeping 95%% of in-distribution flows.</p>\n<table><tr><th>confidence</th><th>AUROC</th><th>FPR95</th></tr>\n",
			r.OOD.IDFlows, r.OOD.OODFlows)
		for _, k := range ConfidenceKinds() {
			s := r.OOD.Scores(k)
			fmt.Fprintf(&b, "<tr><td>%s</td><td>%.4f</td><td>%.4f</td></tr>\n", k, s.AUROC, s.FPR95)
		}
		b.WriteString("</table>\n")
	}
	b.WriteString("</body></html>\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("eval: HTML report: %w", err)
	}
	return nil
}

func esc(s string) string { return html.EscapeString(s) }

// heat maps v ∈ [0, 1] from near-white to dark blue.
func heat(v float64) string {
	v = math.Max(0, math.Min(1, v))
	lo := [3]float64{247, 251, 255}
	hi := [3]float64{8, 48, 107}
	var c [3]int
	for i := range c {
		c[i] = int(math.Round(lo[i] + (hi[i]-lo[i])*v))
	}
	return fmt.Sprintf("#%02x%02x%02x", c[0], c[1], c[2])
}

func truncName(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func confusionSVG(cm [][]int, names []string) string {
	c := len(cm)
	if c == 0 {
		return ""
	}
	cell := 36.0
	if c > 20 {
		cell = math.Max(14, 720/float64(c))
	}
	left, top := 170.0, 130.0
	wd := left + cell*float64(c) + 20
	ht := top + cell*float64(c) + 30
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="confusion matrix">`+"\n", wd, ht, wd, ht)
	name := func(k int) string {
		if k < len(names) {
			return truncName(names[k], 20)
		}
		return fmt.Sprint(k)
	}
	fs := math.Min(12, cell*0.36)
	for k := 0; k < c; k++ {
		y := top + cell*(float64(k)+0.5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", left-6, y, fs, esc(name(k)))
		x := left + cell*(float64(k)+0.5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="%.1f" transform="rotate(-55 %.1f %.1f)">%s</text>`+"\n", x, top-6, fs, x, top-6, esc(name(k)))
	}
	for y, row := range cm {
		sum := 0
		for _, v := range row {
			sum += v
		}
		for x, v := range row {
			frac := 0.0
			if sum > 0 {
				frac = float64(v) / float64(sum)
			}
			px, py := left+cell*float64(x), top+cell*float64(y)
			stroke := "#e0e0e0"
			if x == y {
				stroke = "#888"
			}
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" stroke="%s"><title>true %s, predicted %s: %d (%.1f%% of row)</title></rect>`+"\n",
				px, py, cell, cell, heat(frac), stroke, esc(name(y)), esc(name(x)), v, 100*frac)
			if v > 0 {
				col := "#1a1a1a"
				if frac > 0.5 {
					col = "#fff"
				}
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="%.1f" text-anchor="middle" dominant-baseline="middle" fill="%s">%d</text>`+"\n",
					px+cell/2, py+cell/2, fs, col, v)
			}
		}
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="12" text-anchor="middle" fill="#555">predicted →</text>`+"\n", left+cell*float64(c)/2, ht-8)
	b.WriteString("</svg>\n")
	return b.String()
}

func f1Bars(pcs []ClassMetrics) string {
	if len(pcs) == 0 {
		return ""
	}
	row := 20.0
	left, top, barW := 150.0, 28.0, 260.0
	wd := left + barW + 60
	ht := top + row*float64(len(pcs)) + 28
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="per-class F1">`+"\n", wd, ht, wd, ht)
	fmt.Fprintf(&b, `<text x="%.1f" y="16" font-size="13" font-weight="600">F1 per class</text>`+"\n", left)
	for _, t := range []float64{0, 0.25, 0.5, 0.75, 1} {
		x := left + barW*t
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/><text x="%.1f" y="%.1f" font-size="10" text-anchor="middle" fill="#555">%.2g</text>`+"\n",
			x, top, x, top+row*float64(len(pcs)), x, ht-10, t)
	}
	for i, pc := range pcs {
		y := top + row*float64(i)
		fill := "#3b78c2"
		if pc.Support == 0 {
			fill = "#bbb"
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", left-6, y+row/2, esc(truncName(pc.Name, 22)))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: F1 %.4f, support %d</title></rect>`+"\n",
			left, y+3, barW*pc.F1, row-6, fill, esc(pc.Name), pc.F1, pc.Support)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="10" dominant-baseline="middle" fill="#333">%.3f</text>`+"\n", left+barW*pc.F1+4, y+row/2, pc.F1)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceTicks returns about n round tick values covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	if !(hi > lo) {
		hi = lo + 1
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var ticks []float64
	for t := math.Ceil(lo/step) * step; t <= hi+step*1e-9; t += step {
		ticks = append(ticks, t)
	}
	return ticks
}

type series struct {
	name   string
	color  string
	xs, ys []float64
}

// lineChart draws series over a shared x axis (epochs).
func lineChart(title, xLabel string, ss []series, logY bool) string {
	const wd, ht = 520.0, 300.0
	const left, right, top, bottom = 60.0, 16.0, 30.0, 42.0
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	tr := func(v float64) float64 {
		if logY {
			return math.Log10(v)
		}
		return v
	}
	any := false
	for _, s := range ss {
		for i := range s.xs {
			if logY && !(s.ys[i] > 0) {
				continue
			}
			any = true
			xmin, xmax = math.Min(xmin, s.xs[i]), math.Max(xmax, s.xs[i])
			ymin, ymax = math.Min(ymin, tr(s.ys[i])), math.Max(ymax, tr(s.ys[i]))
		}
	}
	if !any {
		return ""
	}
	if xmax == xmin {
		xmax = xmin + 1
	}
	if ymax == ymin {
		ymin, ymax = ymin-0.5, ymax+0.5
	}
	pad := (ymax - ymin) * 0.05
	ymin, ymax = ymin-pad, ymax+pad
	px := func(x float64) float64 { return left + (x-xmin)/(xmax-xmin)*(wd-left-right) }
	py := func(y float64) float64 { return top + (ymax-y)/(ymax-ymin)*(ht-top-bottom) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s">`+"\n", wd, ht, wd, ht, esc(title))
	fmt.Fprintf(&b, `<text x="%.1f" y="18" font-size="13" font-weight="600">%s</text>`+"\n", left, esc(title))
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#ccc"/>`+"\n", left, top, wd-left-right, ht-top-bottom)
	for _, t := range niceTicks(xmin, xmax, 6) {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/><text x="%.1f" y="%.1f" font-size="10" text-anchor="middle" fill="#555">%g</text>`+"\n",
			px(t), top, px(t), ht-bottom, px(t), ht-bottom+14, roundTick(t))
	}
	for _, t := range niceTicks(ymin, ymax, 5) {
		label := fmt.Sprintf("%g", roundTick(t))
		if logY {
			label = fmt.Sprintf("%.2g", math.Pow(10, t))
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/><text x="%.1f" y="%.1f" font-size="10" text-anchor="end" dominant-baseline="middle" fill="#555">%s</text>`+"\n",
			left, py(t), wd-right, py(t), left-4, py(t), label)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="middle" fill="#555">%s</text>`+"\n", (left+wd-right)/2, ht-8, esc(xLabel))
	lx := left + 8
	for _, s := range ss {
		var pts strings.Builder
		n := 0
		for i := range s.xs {
			if logY && !(s.ys[i] > 0) {
				continue
			}
			fmt.Fprintf(&pts, "%.1f,%.1f ", px(s.xs[i]), py(tr(s.ys[i])))
			n++
		}
		if n == 0 {
			continue
		}
		if n == 1 || len(s.xs) <= 30 {
			for i := range s.xs {
				if logY && !(s.ys[i] > 0) {
					continue
				}
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="%s"/>`+"\n", px(s.xs[i]), py(tr(s.ys[i])), s.color)
			}
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.6" points="%s"/>`+"\n", s.color, strings.TrimSpace(pts.String()))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/><text x="%.1f" y="%.1f" font-size="11" dominant-baseline="middle">%s</text>`+"\n",
			lx, top+12, lx+16, top+12, s.color, lx+20, top+12, esc(s.name))
		lx += 30 + 6.5*float64(len(s.name))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func roundTick(t float64) float64 {
	v := math.Round(t*1e9) / 1e9
	if v == 0 {
		return 0 // no "-0"
	}
	return v
}

// learningCurves draws loss, validation scores and lr against epoch.
func learningCurves(log []TrainRecord) string {
	var loss, vloss, vacc, vf1, lr series
	loss = series{name: "train loss", color: "#3b78c2"}
	vloss = series{name: "val loss", color: "#d9822b"}
	vacc = series{name: "val accuracy", color: "#2a9d5c"}
	vf1 = series{name: "val macro-F1", color: "#b03a8e"}
	lr = series{name: "lr", color: "#555"}
	add := func(s *series, x float64, v *float64) {
		if v != nil && !math.IsNaN(*v) && !math.IsInf(*v, 0) {
			s.xs = append(s.xs, x)
			s.ys = append(s.ys, *v)
		}
	}
	for _, rec := range log {
		add(&loss, rec.Epoch, rec.Loss)
		add(&vloss, rec.Epoch, rec.ValLoss)
		add(&vacc, rec.Epoch, rec.ValAccuracy)
		add(&vf1, rec.Epoch, rec.ValMacroF1)
		add(&lr, rec.Epoch, rec.LR)
	}
	var b strings.Builder
	nonEmpty := func(ss ...series) []series {
		var out []series
		for _, s := range ss {
			if len(s.xs) > 0 {
				out = append(out, s)
			}
		}
		return out
	}
	if ss := nonEmpty(loss, vloss); len(ss) > 0 {
		b.WriteString(lineChart("loss", "epoch", ss, false))
	}
	if ss := nonEmpty(vacc, vf1); len(ss) > 0 {
		b.WriteString(lineChart("validation scores", "epoch", ss, false))
	}
	if ss := nonEmpty(lr); len(ss) > 0 {
		b.WriteString(lineChart("learning rate", "epoch", ss, false))
	}
	return b.String()
}

func reliabilitySVG(bins []Bin, title string) string {
	const size = 300.0
	const left, top = 50.0, 30.0
	const strip = 24.0 // height of the bin-share histogram under the axis
	wd, ht := left+size+16, top+size+44+strip+8
	px := func(v float64) float64 { return left + v*size }
	py := func(v float64) float64 { return top + (1-v)*size }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="reliability diagram">`+"\n", wd, ht, wd, ht)
	fmt.Fprintf(&b, `<text x="%.1f" y="18" font-size="13" font-weight="600">%s</text>`+"\n", left, esc(title))
	for _, t := range []float64{0, 0.2, 0.4, 0.6, 0.8, 1} {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/><text x="%.1f" y="%.1f" font-size="10" text-anchor="end" dominant-baseline="middle" fill="#555">%.1f</text>`+"\n",
			left, py(t), px(1), py(t), left-4, py(t), t)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="10" text-anchor="middle" fill="#555">%.1f</text>`+"\n", px(t), py(0)+14, t)
	}
	total := 0
	for _, bn := range bins {
		total += bn.Count
	}
	for _, bn := range bins {
		if bn.Count == 0 {
			continue
		}
		x, w := px(bn.Lower), (bn.Upper-bn.Lower)*size
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#3b78c2" stroke="#fff"><title>(%.3f, %.3f]: %d flows, accuracy %.3f, confidence %.3f</title></rect>`+"\n",
			x, py(bn.Accuracy), w, bn.Accuracy*size, bn.Lower, bn.Upper, bn.Count, bn.Accuracy, bn.Confidence)
		lo, hi := math.Min(bn.Accuracy, bn.Confidence), math.Max(bn.Accuracy, bn.Confidence)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#d9534f" fill-opacity="0.35"/>`+"\n", x, py(hi), w, (hi-lo)*size)
		// Share of flows in the bin, as a small histogram under the axis.
		h := strip * float64(bn.Count) / float64(max(total, 1))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#999" stroke="#fff"/>`+"\n", x, py(0)+36+strip-h, w, h)
	}
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333" stroke-dasharray="4 3"/>`+"\n", px(0), py(0), px(1), py(1))
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#ccc"/>`+"\n", left, top, size, size)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="middle" fill="#555">confidence</text>`+"\n", px(0.5), py(0)+28)
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ccc"/><text x="%.1f" y="%.1f" font-size="10" text-anchor="end" fill="#555">flows</text>`+"\n",
		left, py(0)+36+strip, px(1), py(0)+36+strip, left-4, py(0)+36+strip)
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="10" height="10" fill="#3b78c2"/><text x="%.1f" y="%.1f" font-size="10" dominant-baseline="middle">accuracy</text>`+"\n", left+6, top+6, left+20, top+11)
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="10" height="10" fill="#d9534f" fill-opacity="0.35"/><text x="%.1f" y="%.1f" font-size="10" dominant-baseline="middle">gap to confidence</text>`+"\n", left+6, top+20, left+20, top+25)
	fmt.Fprintf(&b, `<text x="12" y="%.1f" font-size="11" text-anchor="middle" fill="#555" transform="rotate(-90 12 %.1f)">accuracy</text>`+"\n", py(0.5), py(0.5))
	b.WriteString("</svg>\n")
	return b.String()
}
