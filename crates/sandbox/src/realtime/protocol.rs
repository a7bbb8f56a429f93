//! Phoenix channel frames as Supabase Realtime speaks them: a JSON object per frame in
//! protocol 1.0.0, a JSON array `[join_ref, ref, topic, event, payload]` in 2.0.0.

use serde::Serialize;
use serde_json::{Value, json};

/// The protocol version a socket asked for with `?vsn=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vsn {
    V1,
    V2,
}

impl Vsn {
    /// `None` (no `vsn`) is Phoenix's default, 1.0.0.
    pub fn parse(vsn: Option<&str>) -> Result<Self, String> {
        match vsn {
            None | Some("1.0.0") => Ok(Vsn::V1),
            Some("2.0.0") => Ok(Vsn::V2),
            Some(other) => Err(format!(
                "unsupported protocol version {other:?} (vsn 1.0.0 and 2.0.0 are served)"
            )),
        }
    }
}

/// One frame, either way.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub join_ref: Option<String>,
    pub msg_ref: Option<String>,
    pub topic: String,
    pub event: String,
    pub payload: Value,
}

/// A ref is a string in both versions; some clients send numbers.
fn reference(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Frame {
    pub fn decode(vsn: Vsn, text: &str) -> Result<Frame, String> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("a frame that is not JSON: {e}"))?;
        let (join_ref, msg_ref, topic, event, payload) = match (vsn, &value) {
            (Vsn::V1, Value::Object(o)) => (
                o.get("join_ref").and_then(reference),
                o.get("ref").and_then(reference),
                o.get("topic"),
                o.get("event"),
                o.get("payload"),
            ),
            (Vsn::V2, Value::Array(a)) if a.len() == 5 => (
                reference(&a[0]),
                reference(&a[1]),
                Some(&a[2]),
                Some(&a[3]),
                Some(&a[4]),
            ),
            (Vsn::V1, _) => return Err("a vsn 1.0.0 frame is a JSON object".into()),
            (Vsn::V2, _) => return Err("a vsn 2.0.0 frame is a JSON array of five".into()),
        };
        let text = |v: Option<&Value>, what: &str| {
            v.and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("a frame without a {what}"))
        };
        Ok(Frame {
            join_ref,
            msg_ref,
            topic: text(topic, "topic")?,
            event: text(event, "event")?,
            payload: payload.cloned().unwrap_or_else(|| json!({})),
        })
    }

    pub fn encode(&self, vsn: Vsn) -> String {
        encode(
            vsn,
            self.join_ref.as_deref(),
            self.msg_ref.as_deref(),
            &self.topic,
            &self.event,
            &self.payload,
        )
    }

    /// The reply to this frame: same topic and refs.
    pub fn reply(&self, ok: bool, response: Value) -> Frame {
        Frame {
            join_ref: self.join_ref.clone(),
            msg_ref: self.msg_ref.clone(),
            topic: self.topic.clone(),
            event: "phx_reply".into(),
            payload: json!({"status": if ok { "ok" } else { "error" }, "response": response}),
        }
    }

    /// A refusal: `{"status": "error", "response": {"reason": ...}}`.
    pub fn refuse(&self, reason: impl Into<String>) -> Frame {
        self.reply(false, json!({"reason": reason.into()}))
    }

    /// A message the server sends on its own on a joined channel.
    pub fn push(topic: &str, join_ref: Option<&str>, event: &str, payload: Value) -> Frame {
        Frame {
            join_ref: join_ref.map(str::to_string),
            msg_ref: None,
            topic: topic.to_string(),
            event: event.to_string(),
            payload,
        }
    }
}

/// A frame's text from its parts, the payload serialized in place (never copied into
/// a `Value` first), so a change's data serialized once can go to every subscriber.
pub fn encode(
    vsn: Vsn,
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    event: &str,
    payload: &impl Serialize,
) -> String {
    #[derive(Serialize)]
    struct V1<'a, P> {
        join_ref: Option<&'a str>,
        #[serde(rename = "ref")]
        msg_ref: Option<&'a str>,
        topic: &'a str,
        event: &'a str,
        payload: &'a P,
    }
    let encoded = match vsn {
        Vsn::V1 => serde_json::to_string(&V1 {
            join_ref,
            msg_ref,
            topic,
            event,
            payload,
        }),
        Vsn::V2 => serde_json::to_string(&(join_ref, msg_ref, topic, event, payload)),
    };
    // Strings, options and JSON values always serialize.
    encoded.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_versions_round_trip() {
        let frame = Frame {
            join_ref: Some("1".into()),
            msg_ref: Some("2".into()),
            topic: "realtime:jobs".into(),
            event: "phx_join".into(),
            payload: json!({"config": {}}),
        };
        for vsn in [Vsn::V1, Vsn::V2] {
            assert_eq!(
                Frame::decode(vsn, &frame.encode(vsn)).expect("decodes"),
                frame
            );
        }
        assert!(frame.encode(Vsn::V2).starts_with("[\"1\",\"2\","));
        assert!(Frame::decode(Vsn::V2, &frame.encode(Vsn::V1)).is_err());
        assert!(Frame::decode(Vsn::V1, "[1,2]").is_err());
        assert_eq!(Vsn::parse(None), Ok(Vsn::V1));
        assert!(Vsn::parse(Some("3.0.0")).is_err());
    }
}
