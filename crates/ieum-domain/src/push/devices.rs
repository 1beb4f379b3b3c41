//! Registering devices, muting rooms, push preferences.

use uuid::Uuid;

use crate::auth::{Grant, Principal};
use crate::error::{DomainError, DomainResult};
use crate::room::Membership;

use super::{
    APP_VERSION_MAX, Device, DeviceRegistration, LOCALE_MAX, Mute, PrefsUpdate, PushPrefs,
    PushService, TOKEN_MAX,
};

pub(crate) fn device_not_found() -> DomainError {
    DomainError::not_found("device_not_found", "no such device of yours")
}

fn check_registration(registration: &DeviceRegistration) -> DomainResult<()> {
    let token = registration.token.as_str();
    if token.is_empty() || token.len() > TOKEN_MAX || token.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            "invalid_token",
            format!("token must be 1 to {TOKEN_MAX} bytes without control characters"),
        ));
    }
    let too_long = |value: &Option<String>, max: usize| {
        value
            .as_ref()
            .is_some_and(|v| v.len() > max || v.chars().any(char::is_control))
    };
    if too_long(&registration.app_version, APP_VERSION_MAX) {
        return Err(DomainError::invalid(
            "invalid_app_version",
            format!("appVersion must be at most {APP_VERSION_MAX} bytes"),
        ));
    }
    if too_long(&registration.locale, LOCALE_MAX) {
        return Err(DomainError::invalid(
            "invalid_locale",
            format!("locale must be at most {LOCALE_MAX} bytes"),
        ));
    }
    Ok(())
}

impl PushService {
    /// Registers the caller's device under the session that asks (its
    /// logout removes it). A token seen before keeps its device id, whoever
    /// held it.
    pub async fn register_device(
        &self,
        grant: &Grant,
        registration: DeviceRegistration,
    ) -> DomainResult<Device> {
        check_registration(&registration)?;
        let device = Device {
            id: Uuid::now_v7(),
            user_id: grant.principal.user_id,
            platform: registration.platform,
            token: registration.token,
            app_version: registration.app_version,
            locale: registration.locale,
            data_only: registration.data_only,
            family_id: grant.family_id,
            created_at: self.clock.now(),
        };
        let stored = self.devices.register(&device).await?;
        self.trim_devices(grant.principal.user_id).await?;
        tracing::debug!(device = %stored.id, platform = stored.platform.as_str(), "device registered");
        Ok(stored)
    }

    /// A user keeps at most [`super::DEVICES_PER_USER`] devices: tokens of
    /// reinstalled apps are otherwise never told apart from live ones.
    async fn trim_devices(&self, user_id: Uuid) -> DomainResult<()> {
        let mut devices = self.devices.of_users(&[user_id]).await?;
        if devices.len() <= super::DEVICES_PER_USER {
            return Ok(());
        }
        devices.sort_by_key(|d| (d.created_at, d.id));
        let extra = devices.len() - super::DEVICES_PER_USER;
        for device in devices.into_iter().take(extra) {
            self.devices.remove(user_id, device.id).await?;
        }
        Ok(())
    }

    pub async fn devices(&self, who: &Principal) -> DomainResult<Vec<Device>> {
        self.devices.of_users(&[who.user_id]).await
    }

    /// A device of the caller (a connection naming the device it runs on).
    pub async fn own_device(&self, who: &Principal, id: Uuid) -> DomainResult<Device> {
        self.devices
            .find(id)
            .await?
            .filter(|d| d.user_id == who.user_id)
            .ok_or_else(device_not_found)
    }

    pub async fn remove_device(&self, who: &Principal, id: Uuid) -> DomainResult<()> {
        if self.devices.remove(who.user_id, id).await? {
            Ok(())
        } else {
            Err(device_not_found())
        }
    }

    /// A session family logged out: its devices get no more pushes.
    pub async fn logged_out(&self, family_id: Uuid) -> DomainResult<()> {
        let removed = self.devices.remove_family(family_id).await?;
        if removed > 0 {
            tracing::debug!(family = %family_id, removed, "devices removed at logout");
        }
        Ok(())
    }

    async fn require_member(&self, who: &Principal, room_id: &str) -> DomainResult<Membership> {
        self.rooms
            .membership(room_id, who.user_id)
            .await?
            .filter(Membership::is_active)
            .ok_or_else(crate::rooms::not_member)
    }

    /// Mutes a room for the caller, until a time or until unmuted.
    pub async fn mute(&self, who: &Principal, room_id: &str, mute: Mute) -> DomainResult<Mute> {
        self.require_member(who, room_id).await?;
        if mute.until.is_some_and(|until| until <= self.clock.now()) {
            return Err(DomainError::invalid(
                "invalid_mute",
                "until must be in the future (or absent: until unmuted)",
            ));
        }
        self.outbox.mute(who.user_id, room_id, mute).await?;
        Ok(mute)
    }

    pub async fn unmute(&self, who: &Principal, room_id: &str) -> DomainResult<()> {
        self.require_member(who, room_id).await?;
        self.outbox.unmute(who.user_id, room_id).await?;
        Ok(())
    }

    /// The caller's mute of a room, when one is in force.
    pub async fn mute_of(&self, who: &Principal, room_id: &str) -> DomainResult<Option<Mute>> {
        self.require_member(who, room_id).await?;
        let now = self.clock.now();
        Ok(self
            .outbox
            .mute_of(who.user_id, room_id)
            .await?
            .filter(|m| m.active(now)))
    }

    pub async fn prefs(&self, who: &Principal) -> DomainResult<PushPrefs> {
        self.outbox.prefs(who.user_id).await
    }

    pub async fn update_prefs(
        &self,
        who: &Principal,
        update: PrefsUpdate,
    ) -> DomainResult<PushPrefs> {
        let mut prefs = self.outbox.prefs(who.user_id).await?;
        if let Some(previews) = update.previews {
            prefs.previews = previews;
        }
        if let Some(mentions) = update.mentions_when_muted {
            prefs.mentions_when_muted = mentions;
        }
        self.outbox.set_prefs(who.user_id, prefs).await?;
        Ok(prefs)
    }

    /// Whether proofs of receipt matter for this user: only a user with a
    /// registered device is ever pushed.
    pub async fn wants_proofs(&self, user_id: Uuid) -> DomainResult<bool> {
        Ok(!self.devices.of_users(&[user_id]).await?.is_empty())
    }

    /// A connection was proven to hold the room's messages up to `seq`.
    pub async fn delivered(
        &self,
        user_id: Uuid,
        device: Option<Uuid>,
        room_id: &str,
        seq: i64,
    ) -> DomainResult<()> {
        self.outbox
            .record_delivered(user_id, device, room_id, seq)
            .await
    }
}
