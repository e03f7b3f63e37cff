package data

import (
	"fmt"
	"slices"
	"strings"
)

// Chat templates are recognised and rendered as llama.cpp does
// (src/llama-chat.cpp, llm_chat_detect_template and llm_chat_apply_template):
// no Jinja, a fixed list of known formats picked by telltale substrings of
// the model's tokenizer.chat_template. Rendering here also marks which
// pieces are the assistant's answers, the only ones trained on.

// chatTemplates lists the templates llama.cpp knows by name, in its order.
// Those with a renderer below can be used for training.
var chatTemplates = []string{
	"chatml", "llama2", "llama2-sys", "llama2-sys-bos", "llama2-sys-strip",
	"mistral-v1", "mistral-v3", "mistral-v3-tekken", "mistral-v7",
	"phi3", "phi4", "falcon3", "zephyr", "monarch", "gemma", "orion", "openchat",
	"vicuna", "vicuna-orca", "deepseek", "deepseek2", "deepseek3", "command-r",
	"llama3", "chatglm3", "chatglm4", "glmedge", "minicpm", "exaone3",
	"rwkv-world", "granite", "gigachat", "megrez",
}

// ChatTemplates returns the names RenderChat supports.
func ChatTemplates() []string {
	var out []string
	for _, n := range chatTemplates {
		if _, ok := chatRenderers[n]; ok {
			out = append(out, n)
		}
	}
	return out
}

// DetectChatTemplate maps a template name or a tokenizer.chat_template
// (Jinja source) to a template name, following llama.cpp's heuristics in
// order; "" when nothing matches.
func DetectChatTemplate(tmpl string) string {
	if slices.Contains(chatTemplates, tmpl) {
		return tmpl
	}
	has := func(s string) bool { return strings.Contains(tmpl, s) }
	switch {
	case has("<|im_start|>"):
		if has("<|im_sep|>") {
			return "phi4"
		}
		return "chatml"
	case strings.HasPrefix(tmpl, "mistral") || has("[INST]"):
		if has("[SYSTEM_PROMPT]") {
			return "mistral-v7"
		}
		// Official mistral v1, v3 and v3-tekken templates.
		if has("' [INST] ' + system_message") || has("[AVAILABLE_TOOLS]") {
			if has(" [INST]") {
				return "mistral-v1"
			}
			if has(`"[INST]"`) {
				return "mistral-v3-tekken"
			}
			return "mistral-v3"
		}
		// llama2 and its variants.
		switch {
		case has("content.strip()"):
			return "llama2-sys-strip"
		case has("bos_token + '[INST]"):
			return "llama2-sys-bos"
		case has("<<SYS>>"):
			return "llama2-sys"
		}
		return "llama2"
	case has("<|assistant|>") && has("<|end|>"):
		return "phi3"
	case has("[gMASK]<sop>"):
		return "chatglm4"
	case has("<|assistant|>") && has("<|user|>"):
		if has("</s>") {
			return "falcon3"
		}
		return "glmedge"
	case has("<|user|>") && has("<|endoftext|>"):
		return "zephyr"
	case has("bos_token + message['role']"):
		return "monarch"
	case has("<start_of_turn>"):
		return "gemma"
	case has(`'\n\nAssistant: ' + eos_token`):
		return "orion"
	case has("GPT4 Correct "):
		return "openchat"
	case has("USER: ") && has("ASSISTANT: "):
		if has("SYSTEM: ") {
			return "vicuna-orca"
		}
		return "vicuna"
	case has("### Instruction:") && has("<|EOT|>"):
		return "deepseek"
	case has("<|START_OF_TURN_TOKEN|>") && has("<|USER_TOKEN|>"):
		return "command-r"
	case has("<|start_header_id|>") && has("<|end_header_id|>"):
		return "llama3"
	case has("[gMASK]sop"):
		return "chatglm3"
	case has("<用户>"):
		return "minicpm"
	case has("'Assistant: ' + message['content'] + eos_token"):
		return "deepseek2"
	case has("<｜Assistant｜>") && has("<｜User｜>") && has("<｜end▁of▁sentence｜>"):
		return "deepseek3"
	case has("[|system|]") && has("[|assistant|]") && has("[|endofturn|]"):
		return "exaone3"
	case has("rwkv-world"):
		return "rwkv-world"
	case has("<|start_of_role|>"):
		return "granite"
	case has("message['role'] + additional_special_tokens[0] + message['content'] + additional_special_tokens[1]"):
		return "gigachat"
	case has("<|role_start|>"):
		return "megrez"
	}
	return ""
}

// chatBuilder collects segments, merging neighbours with the same Train flag.
type chatBuilder struct{ segs []Segment }

func (b *chatBuilder) add(text string, train bool) {
	if text == "" {
		return
	}
	if n := len(b.segs); n > 0 && b.segs[n-1].Train == train {
		b.segs[n-1].Text += text
		return
	}
	b.segs = append(b.segs, Segment{text, train})
}

// say adds an untrained piece; answer adds an assistant answer (trained).
func (b *chatBuilder) say(parts ...string) {
	for _, p := range parts {
		b.add(p, false)
	}
}
func (b *chatBuilder) answer(parts ...string) {
	for _, p := range parts {
		b.add(p, true)
	}
}

// trim is llama-chat.cpp's trim (ASCII whitespace).
func trim(s string) string { return strings.Trim(s, " \t\n\v\f\r") }

var chatRenderers = map[string]func(b *chatBuilder, msgs []Message){
	"chatml": func(b *chatBuilder, msgs []Message) {
		for _, m := range msgs {
			b.say("<|im_start|>", m.Role, "\n")
			if m.Role == "assistant" {
				b.answer(m.Content, "<|im_end|>")
				b.say("\n")
			} else {
				b.say(m.Content, "<|im_end|>\n")
			}
		}
	},
	"phi4": func(b *chatBuilder, msgs []Message) {
		for _, m := range msgs {
			b.say("<|im_start|>", m.Role, "<|im_sep|>")
			if m.Role == "assistant" {
				b.answer(m.Content, "<|im_end|>")
			} else {
				b.say(m.Content, "<|im_end|>")
			}
		}
	},
	"mistral-v7": func(b *chatBuilder, msgs []Message) {
		for _, m := range msgs {
			switch m.Role {
			case "system":
				b.say("[SYSTEM_PROMPT] ", m.Content, "[/SYSTEM_PROMPT]")
			case "user":
				b.say("[INST] ", m.Content, "[/INST]")
			default:
				b.say(" ")
				b.answerIf(m, m.Content, "</s>")
			}
		}
	},
	"mistral-v1":        renderMistral("mistral-v1"),
	"mistral-v3":        renderMistral("mistral-v3"),
	"mistral-v3-tekken": renderMistral("mistral-v3-tekken"),
	"llama2":            renderLlama2("llama2"),
	"llama2-sys":        renderLlama2("llama2-sys"),
	"llama2-sys-bos":    renderLlama2("llama2-sys-bos"),
	"llama2-sys-strip":  renderLlama2("llama2-sys-strip"),
	"phi3": func(b *chatBuilder, msgs []Message) {
		for _, m := range msgs {
			b.say("<|", m.Role, "|>\n")
			b.answerIf(m, m.Content, "<|end|>")
			b.say("\n")
		}
	},
	"zephyr": func(b *chatBuilder, msgs []Message) {
		for _, m := range msgs {
			b.say("<|", m.Role, "|>\n")
			b.answerIf(m, m.Content, "<|endoftext|>")
			b.say("\n")
		}
	},
	"gemma": func(b *chatBuilder, msgs []Message) {
		// Gemma has no system role: llama.cpp merges it into the next user turn.
		system := ""
		for _, m := range msgs {
			if m.Role == "system" {
				system += trim(m.Content)
				continue
			}
			role := m.Role
			if role == "assistant" {
				role = "model"
			}
			b.say("<start_of_turn>", role, "\n")
			if system != "" && role != "model" {
				b.say(system, "\n\n")
				system = ""
			}
			b.answerIf(m, trim(m.Content), "<end_of_turn>")
			b.say("\n")
		}
	},
	"llama3": func(b *chatBuilder, msgs []Message) {
		for _, m := range msgs {
			b.say("<|start_header_id|>", m.Role, "<|end_header_id|>\n\n")
			b.answerIf(m, trim(m.Content), "<|eot_id|>")
		}
	},
}

// answerIf adds content+end as an answer for assistant turns, else untrained.
func (b *chatBuilder) answerIf(m Message, content, end string) {
	if m.Role == "assistant" {
		b.answer(content, end)
	} else {
		b.say(content, end)
	}
}

// renderMistral: the official v1, v3 and v3-tekken formats differ only in
// spaces around [INST] and in trimming answers (v3).
func renderMistral(name string) func(b *chatBuilder, msgs []Message) {
	lead, trail := "", " "
	switch name {
	case "mistral-v1":
		lead = " "
	case "mistral-v3-tekken":
		trail = ""
	}
	trimAnswer := name == "mistral-v3"
	return func(b *chatBuilder, msgs []Message) {
		inTurn := false
		for _, m := range msgs {
			if !inTurn {
				b.say(lead, "[INST]", trail)
				inTurn = true
			}
			switch m.Role {
			case "system":
				b.say(m.Content, "\n\n")
			case "user":
				b.say(m.Content, lead, "[/INST]")
			default:
				c := m.Content
				if trimAnswer {
					c = trim(c)
				}
				b.say(trail)
				b.answerIf(m, c, "</s>")
				inTurn = false
			}
		}
	}
}

// renderLlama2: [INST] turns; variants add <<SYS>>, a BOS inside the
// history, or strip messages.
func renderLlama2(name string) func(b *chatBuilder, msgs []Message) {
	sysTags := name != "llama2"
	bosInHistory := name == "llama2-sys-bos"
	strip := name == "llama2-sys-strip"
	return func(b *chatBuilder, msgs []Message) {
		inTurn := true // the first [INST] is written below, BOS comes from the tokenizer
		b.say("[INST] ")
		for _, m := range msgs {
			c := m.Content
			if strip {
				c = trim(c)
			}
			if !inTurn {
				inTurn = true
				if bosInHistory {
					b.say("<s>[INST] ")
				} else {
					b.say("[INST] ")
				}
			}
			switch m.Role {
			case "system":
				if sysTags {
					b.say("<<SYS>>\n", c, "\n<</SYS>>\n\n")
				} else {
					b.say(c, "\n")
				}
			case "user":
				b.say(c, " [/INST]")
			default:
				b.answerIf(m, c, "</s>")
				inTurn = false
			}
		}
	}
}

// RenderChat renders a conversation with the named template (see
// ChatTemplates) into segments; the assistant's answers, each with its
// end-of-turn marker, are the trained ones. Like llama.cpp the rendering has
// no BOS (the tokenizer adds it) and no generation prompt.
func RenderChat(name string, msgs []Message) ([]Segment, error) {
	render, ok := chatRenderers[name]
	if !ok {
		if slices.Contains(chatTemplates, name) {
			return nil, fmt.Errorf("data: chat template %q is not supported for training; use one of %s",
				name, strings.Join(ChatTemplates(), ", "))
		}
		return nil, fmt.Errorf("data: unknown chat template %q; use one of %s", name, strings.Join(ChatTemplates(), ", "))
	}
	var b chatBuilder
	render(&b, msgs)
	return b.segs, nil
}
