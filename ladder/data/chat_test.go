package data

import (
	"reflect"
	"strings"
	"testing"
)

// The conversation and the expected renderings below are llama.cpp's own
// test vectors (tests/test-chat-template.cpp, legacy llama_chat_apply_template
// path, add_generation_prompt = true), so they are independent of this code.
// The templates are those models' tokenizer.chat_template (long ones cut to
// the parts the detection looks at).
var llamaCppConversation = []Message{
	{"system", "You are a helpful assistant"},
	{"user", "Hello"},
	{"assistant", "Hi there"},
	{"user", "Who are you"},
	{"assistant", "   I am an assistant   "},
	{"user", "Another question"},
}

var chatCases = []struct {
	model, template, name string
	genPrompt             string // what llama.cpp appends for add_generation_prompt
	want                  string // llama.cpp's expected_output
	answers               []string
}{
	{
		model:     "teknium/OpenHermes-2.5-Mistral-7B",
		template:  `{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}`,
		name:      "chatml",
		genPrompt: "<|im_start|>assistant\n",
		want:      "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n<|im_start|>assistant\n",
		answers:   []string{"Hi there<|im_end|>", "   I am an assistant   <|im_end|>"},
	},
	{
		model:    "mistralai/Mistral-7B-Instruct-v0.2 (pre-v1)",
		template: `{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}`,
		name:     "llama2",
		want:     "[INST] You are a helpful assistant\nHello [/INST]Hi there</s>[INST] Who are you [/INST]   I am an assistant   </s>[INST] Another question [/INST]",
		answers:  []string{"Hi there</s>", "   I am an assistant   </s>"},
	},
	{
		model:    "TheBloke/FusionNet_34Bx2_MoE-AWQ",
		template: "{%- for idx in range(0, messages|length) -%}\n{%- if messages[idx]['role'] == 'user' -%}\n{%- if idx > 1 -%}\n{{- bos_token + '[INST] ' + messages[idx]['content'] + ' [/INST]' -}}\n{%- else -%}\n{{- messages[idx]['content'] + ' [/INST]' -}}\n{%- endif -%}\n{% elif messages[idx]['role'] == 'system' %}\n{{- '[INST] <<SYS>>\\n' + messages[idx]['content'] + '\\n<</SYS>>\\n\\n' -}}\n{%- elif messages[idx]['role'] == 'assistant' -%}\n{{- ' '  + messages[idx]['content'] + ' ' + eos_token -}}\n{% endif %}\n{% endfor %}",
		name:     "llama2-sys-bos",
		want:     "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s><s>[INST] Who are you [/INST]   I am an assistant   </s><s>[INST] Another question [/INST]",
		answers:  []string{"Hi there</s>", "   I am an assistant   </s>"},
	},
	{
		model:    "bofenghuang/vigogne-2-70b-chat (cut)",
		template: `{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'system' %}{{ '<<SYS>>\\n' + content.strip() + '\\n<</SYS>>\\n\\n' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}`,
		name:     "llama2-sys-strip",
		want:     "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s>[INST] Who are you [/INST]I am an assistant</s>[INST] Another question [/INST]",
		answers:  []string{"Hi there</s>", "I am an assistant</s>"},
	},
	{
		model:    "mistralai/Mistral-7B-Instruct-v0.2 (mistral 'v1' with a system prompt, cut)",
		template: "{{- bos_token }}\n{%- for message in loop_messages %}\n    {%- if message['role'] == 'user' %}\n        {%- if loop.first and system_message is defined %}\n            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}\n        {%- else %}\n            {{- ' [INST] ' + message['content'] + ' [/INST]' }}\n        {%- endif %}\n    {%- elif message['role'] == 'assistant' %}\n        {{- ' ' + message['content'] + eos_token}}\n    {%- endif %}\n{%- endfor %}\n",
		name:     "mistral-v1",
		want:     " [INST] You are a helpful assistant\n\nHello [/INST] Hi there</s> [INST] Who are you [/INST]    I am an assistant   </s> [INST] Another question [/INST]",
		answers:  []string{"Hi there</s>", "   I am an assistant   </s>"},
	},
	{
		model:    "Mistral-Large-Instruct-2407 (mistral 'v3', cut)",
		template: "{%- if tools is not none and (message == user_messages[-1]) %}\n {{- \"[AVAILABLE_TOOLS] [\" }}{%- endif %}\n{%- if loop.last and system_message is defined %}\n {{- \"[INST] \" + system_message + \"\\n\\n\" + message[\"content\"] + \"[/INST]\" }}\n{%- else %}\n {{- \"[INST] \" + message[\"content\"] + \"[/INST]\" }}\n{%- endif %}\n{{- \" \" + message[\"content\"]|trim + eos_token}}",
		name:     "mistral-v3",
		want:     "[INST] You are a helpful assistant\n\nHello[/INST] Hi there</s>[INST] Who are you[/INST] I am an assistant</s>[INST] Another question[/INST]",
		answers:  []string{"Hi there</s>", "I am an assistant</s>"},
	},
	{
		model:    "Mistral-Nemo-Instruct-2407 (mistral 'v3-tekken', cut)",
		template: "{%- if tools is not none and (message == user_messages[-1]) %}\n {{- \"[AVAILABLE_TOOLS][\" }}{%- endif %}\n{%- if loop.last and system_message is defined %}\n {{- \"[INST]\" + system_message + \"\\n\\n\" + message[\"content\"] + \"[/INST]\" }}\n{%- else %}\n {{- \"[INST]\" + message[\"content\"] + \"[/INST]\" }}\n{%- endif %}\n{{- message[\"content\"] + eos_token}}",
		name:     "mistral-v3-tekken",
		want:     "[INST]You are a helpful assistant\n\nHello[/INST]Hi there</s>[INST]Who are you[/INST]   I am an assistant   </s>[INST]Another question[/INST]",
		answers:  []string{"Hi there</s>", "   I am an assistant   </s>"},
	},
	{
		model:    "mistralai/Mistral-Large-Instruct-2411 (mistral 'v7')",
		template: `{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + '[/INST]' }}{% elif message['role'] == 'system' %}{{ '[SYSTEM_PROMPT] ' + message['content'] + '[/SYSTEM_PROMPT]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + eos_token }}{% else %}{{ raise_exception('Only user, system and assistant roles are supported!') }}{% endif %}{% endfor %}`,
		name:     "mistral-v7",
		want:     "[SYSTEM_PROMPT] You are a helpful assistant[/SYSTEM_PROMPT][INST] Hello[/INST] Hi there</s>[INST] Who are you[/INST]    I am an assistant   </s>[INST] Another question[/INST]",
		answers:  []string{"Hi there</s>", "   I am an assistant   </s>"},
	},
	{
		model:     "google/gemma-7b-it",
		template:  `{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}`,
		name:      "gemma",
		genPrompt: "<start_of_turn>model\n",
		want:      "<start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>\n<start_of_turn>model\nHi there<end_of_turn>\n<start_of_turn>user\nWho are you<end_of_turn>\n<start_of_turn>model\nI am an assistant<end_of_turn>\n<start_of_turn>user\nAnother question<end_of_turn>\n<start_of_turn>model\n",
		answers:   []string{"Hi there<end_of_turn>", "I am an assistant<end_of_turn>"},
	},
	{
		model:     "Llama-3",
		template:  `{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}`,
		name:      "llama3",
		genPrompt: "<|start_header_id|>assistant<|end_header_id|>\n\n",
		want:      "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
		answers:   []string{"Hi there<|eot_id|>", "I am an assistant<|eot_id|>"},
	},
	{
		model:     "Phi-3-small",
		template:  `{{ bos_token }}{% for message in messages %}{{'<|' + message['role'] + '|>' + '\n' + message['content'] + '<|end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}`,
		name:      "phi3",
		genPrompt: "<|assistant|>\n",
		want:      "<|system|>\nYou are a helpful assistant<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n<|user|>\nWho are you<|end|>\n<|assistant|>\n   I am an assistant   <|end|>\n<|user|>\nAnother question<|end|>\n<|assistant|>\n",
		answers:   []string{"Hi there<|end|>", "   I am an assistant   <|end|>"},
	},
	{
		model:     "phi-4",
		template:  `{% for message in messages %}{% if (message['role'] == 'system') %}{{'<|im_start|>system<|im_sep|>' + message['content'] + '<|im_end|>'}}{% elif (message['role'] == 'user') %}{{'<|im_start|>user<|im_sep|>' + message['content'] + '<|im_end|><|im_start|>assistant<|im_sep|>'}}{% elif (message['role'] == 'assistant') %}{{message['content'] + '<|im_end|>'}}{% endif %}{% endfor %}`,
		name:      "phi4",
		genPrompt: "<|im_start|>assistant<|im_sep|>",
		want:      "<|im_start|>system<|im_sep|>You are a helpful assistant<|im_end|><|im_start|>user<|im_sep|>Hello<|im_end|><|im_start|>assistant<|im_sep|>Hi there<|im_end|><|im_start|>user<|im_sep|>Who are you<|im_end|><|im_start|>assistant<|im_sep|>   I am an assistant   <|im_end|><|im_start|>user<|im_sep|>Another question<|im_end|><|im_start|>assistant<|im_sep|>",
		answers:   []string{"Hi there<|im_end|>", "   I am an assistant   <|im_end|>"},
	},
	{
		// Not among llama.cpp's current test vectors; expected output
		// written from llama_chat_apply_template's zephyr branch. llama.cpp
		// checks for "<|assistant|>" + "<|user|>" (falcon3, glmedge) before
		// zephyr, so a zephyr template is one that builds role tags
		// generically.
		model:     "zephyr-style (generic role tags, <|endoftext|>)",
		template:  `{% for message in messages %}{% if message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|endoftext|>\n'}}{% else %}{{'<|' + message['role'] + '|>\n' + message['content'] + '<|endoftext|>\n'}}{% endif %}{% endfor %}`,
		name:      "zephyr",
		genPrompt: "<|assistant|>\n",
		want:      "<|system|>\nYou are a helpful assistant<|endoftext|>\n<|user|>\nHello<|endoftext|>\n<|assistant|>\nHi there<|endoftext|>\n<|user|>\nWho are you<|endoftext|>\n<|assistant|>\n   I am an assistant   <|endoftext|>\n<|user|>\nAnother question<|endoftext|>\n<|assistant|>\n",
		answers:   []string{"Hi there<|endoftext|>", "   I am an assistant   <|endoftext|>"},
	},
}

func TestChatTemplatesMatchLlamaCpp(t *testing.T) {
	for _, tc := range chatCases {
		t.Run(tc.model, func(t *testing.T) {
			if got := DetectChatTemplate(tc.template); got != tc.name {
				t.Fatalf("detected %q, want %q", got, tc.name)
			}
			if got := DetectChatTemplate(tc.name); got != tc.name {
				t.Errorf("the name itself detected as %q", got)
			}
			segs, err := RenderChat(tc.name, llamaCppConversation)
			if err != nil {
				t.Fatal(err)
			}
			var all strings.Builder
			var answers []string
			for _, s := range segs {
				all.WriteString(s.Text)
				if s.Train {
					answers = append(answers, s.Text)
				}
			}
			if got := all.String() + tc.genPrompt; got != tc.want {
				t.Errorf("rendered\n%q\nllama.cpp\n%q", got, tc.want)
			}
			if !reflect.DeepEqual(answers, tc.answers) {
				t.Errorf("trained pieces %q, want %q", answers, tc.answers)
			}
		})
	}
}

// TestDetectOtherTemplates covers llama.cpp names we detect but do not
// render, and strings that match nothing.
func TestDetectOtherTemplates(t *testing.T) {
	for tmpl, want := range map[string]string{
		"{{'USER: ' + m}}{{'ASSISTANT: ' + m}}":                 "vicuna",
		"{{'SYSTEM: '}}{{'USER: ' + m}}{{'ASSISTANT: ' + m}}":   "vicuna-orca",
		"<|user|>\n{{m}}<|assistant|>\n{{eos_token}}</s>":       "falcon3",
		"{{ bos_token + message['role'] + '\\n' }}":             "monarch",
		"### Instruction:\n{{m}}<|EOT|>":                        "deepseek",
		"<|START_OF_TURN_TOKEN|><|USER_TOKEN|>":                 "command-r",
		"{% for m in messages %}{{ m['content'] }}{% endfor %}": "",
		"<|user|>\n{{m}}<|assistant|>\n":                        "glmedge",
		"":                                                      "",
		"mistral-unknown":                                       "llama2", // a "mistral" prefix alone falls to llama.cpp's llama2 branch
	} {
		if got := DetectChatTemplate(tmpl); got != want {
			t.Errorf("DetectChatTemplate(%q) = %q, want %q", tmpl, got, want)
		}
	}
	if _, err := RenderChat("vicuna", llamaCppConversation); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("vicuna: error %v, want 'not supported'", err)
	}
	if _, err := RenderChat("nonsense", llamaCppConversation); err == nil || !strings.Contains(err.Error(), "unknown chat template") {
		t.Errorf("nonsense: error %v", err)
	}
	names := ChatTemplates()
	for _, want := range []string{"chatml", "llama2", "llama3", "mistral-v1", "mistral-v3", "mistral-v7", "zephyr", "gemma", "phi3"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("ChatTemplates() = %v lacks %q", names, want)
		}
	}
}
