// Helpers shared by the S5 unit tests: test-data paths, file reading, and a small JSON reader for the vectors.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace s5v::test {

inline std::string TestDataPath(const std::string &name) {
	const char *env = std::getenv("S5V_SOURCE_DIR");
#ifdef S5V_SOURCE_DIR
	std::string root = env ? env : S5V_SOURCE_DIR;
#else
	std::string root = env ? env : ".";
#endif
	return root + "/../shared/testdata/" + name;
}

inline std::string ReadFileOrThrow(const std::string &path) {
	std::ifstream f(path, std::ios::binary);
	if (!f)
		throw std::runtime_error("cannot open " + path);
	std::stringstream ss;
	ss << f.rdbuf();
	return ss.str();
}

// Minimal JSON value: enough for the shared test vectors. Numbers keep their source text.
struct Json {
	enum Type { Null, Bool, Number, String, Array, Object } type = Null;
	bool boolean = false;
	std::string text; // number source text or string value
	std::vector<Json> items;
	std::vector<std::pair<std::string, Json>> members;

	bool IsInteger() const { return type == Number && text.find_first_of(".eE") == std::string::npos; }
	const Json *Find(const std::string &key) const {
		for (const auto &m : members)
			if (m.first == key)
				return &m.second;
		return nullptr;
	}
	const Json &operator[](const std::string &key) const {
		const Json *j = Find(key);
		if (!j)
			throw std::runtime_error("missing key " + key);
		return *j;
	}
	uint64_t U64() const { return std::stoull(text); }
};

class JsonParser {
public:
	explicit JsonParser(const std::string &s) : s_(s) {}
	Json Parse() {
		Json v = Value();
		Ws();
		if (i_ != s_.size())
			throw std::runtime_error("json: trailing data");
		return v;
	}

private:
	void Ws() {
		while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t'))
			i_++;
	}
	char Peek() {
		Ws();
		if (i_ >= s_.size())
			throw std::runtime_error("json: unexpected end");
		return s_[i_];
	}
	void Expect(char c) {
		if (Peek() != c)
			throw std::runtime_error(std::string("json: expected ") + c);
		i_++;
	}
	static void Utf8(uint32_t cp, std::string *out) {
		if (cp < 0x80) {
			out->push_back(static_cast<char>(cp));
		} else if (cp < 0x800) {
			out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
			out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
		} else if (cp < 0x10000) {
			out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
			out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
			out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
		} else {
			out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
			out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
			out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
			out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
		}
	}
	uint32_t Hex4() {
		if (i_ + 4 > s_.size())
			throw std::runtime_error("json: bad escape");
		uint32_t v = static_cast<uint32_t>(std::stoul(s_.substr(i_, 4), nullptr, 16));
		i_ += 4;
		return v;
	}
	std::string Str() {
		Expect('"');
		std::string out;
		while (true) {
			if (i_ >= s_.size())
				throw std::runtime_error("json: unterminated string");
			char c = s_[i_++];
			if (c == '"')
				return out;
			if (c != '\\') {
				out.push_back(c);
				continue;
			}
			char e = s_[i_++];
			switch (e) {
			case 'n':
				out.push_back('\n');
				break;
			case 't':
				out.push_back('\t');
				break;
			case 'r':
				out.push_back('\r');
				break;
			case 'b':
				out.push_back('\b');
				break;
			case 'f':
				out.push_back('\f');
				break;
			case 'u': {
				uint32_t cp = Hex4();
				if (cp >= 0xd800 && cp < 0xdc00 && i_ + 6 <= s_.size() && s_[i_] == '\\' && s_[i_ + 1] == 'u') {
					i_ += 2;
					uint32_t lo = Hex4();
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				}
				Utf8(cp, &out);
				break;
			}
			default:
				out.push_back(e);
			}
		}
	}
	Json Value() {
		Json v;
		char c = Peek();
		if (c == '{') {
			i_++;
			v.type = Json::Object;
			if (Peek() == '}') {
				i_++;
				return v;
			}
			while (true) {
				std::string k = Str();
				Expect(':');
				v.members.emplace_back(k, Value());
				if (Peek() == ',') {
					i_++;
					continue;
				}
				Expect('}');
				return v;
			}
		}
		if (c == '[') {
			i_++;
			v.type = Json::Array;
			if (Peek() == ']') {
				i_++;
				return v;
			}
			while (true) {
				v.items.push_back(Value());
				if (Peek() == ',') {
					i_++;
					continue;
				}
				Expect(']');
				return v;
			}
		}
		if (c == '"') {
			v.type = Json::String;
			v.text = Str();
			return v;
		}
		if (s_.compare(i_, 4, "true") == 0) {
			i_ += 4;
			v.type = Json::Bool;
			v.boolean = true;
			return v;
		}
		if (s_.compare(i_, 5, "false") == 0) {
			i_ += 5;
			v.type = Json::Bool;
			return v;
		}
		if (s_.compare(i_, 4, "null") == 0) {
			i_ += 4;
			return v;
		}
		size_t start = i_;
		while (i_ < s_.size() && std::string("+-0123456789.eE").find(s_[i_]) != std::string::npos)
			i_++;
		if (start == i_)
			throw std::runtime_error("json: unexpected character");
		v.type = Json::Number;
		v.text = s_.substr(start, i_ - start);
		return v;
	}
	const std::string &s_;
	size_t i_ = 0;
};

inline Json LoadJson(const std::string &name) {
	std::string s = ReadFileOrThrow(TestDataPath(name));
	return JsonParser(s).Parse();
}

inline std::vector<uint8_t> Bytes(const std::string &s) {
	return {s.begin(), s.end()};
}

// Deterministic pseudo-random bytes for payloads.
inline std::vector<uint8_t> RandomBytes(size_t n, uint32_t seed) {
	std::mt19937 rng(seed);
	std::vector<uint8_t> v(n);
	for (auto &b : v)
		b = static_cast<uint8_t>(rng());
	return v;
}

} // namespace s5v::test
