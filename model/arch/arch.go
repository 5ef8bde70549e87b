// Package arch describes model architectures: the hyper-parameters needed
// to build a model, shared by the model code and the checkpoint reader.
package arch

// Config is a model's architecture. Zero values mean "official default".
type Config struct {
	Arch       string   `json:"arch"`        // "netmamba" (byte model), "fuse3" (NetMamba+), "nettrans", "fuse3_nettrans"
	Task       string   `json:"task"`        // "classify" or "pretrain"
	ByteLength int      `json:"byte_length"` // 1600 (also 400, 800)
	Stride     int      `json:"stride"`      // 4
	EmbedDim   int      `json:"embed_dim"`   // d_model: 256 (NetMamba), 192 (NetTrans)
	Depth      int      `json:"depth"`       // 4
	DState     int      `json:"d_state"`     // 16
	DConv      int      `json:"d_conv"`      // 4
	Expand     int      `json:"expand"`      // 2 -> d_inner = 512
	DtRank     int      `json:"dt_rank"`     // ceil(d_model/16)
	NumHeads   int      `json:"num_heads"`   // NetTrans: 8
	NumClasses int      `json:"num_classes"` // head outputs
	SeqLen     int      `json:"seq_len"`     // NetMamba+: 20 size / IAT tokens
	Modalities []string `json:"modalities"`  // subset of "bytes", "sizes", "iats"
	// Pre-training decoder.
	DecoderEmbedDim int     `json:"decoder_embed_dim"` // 128
	DecoderDepth    int     `json:"decoder_depth"`     // 2
	MaskRatio       float64 `json:"mask_ratio"`        // 0.9
}
