"""What the bot sends: validation errors, recording, edits, deletions, files, access errors."""

from __future__ import annotations

import datetime as dtm

import pytest
from telegram import (
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    KeyboardButton,
    LinkPreviewOptions,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden

from sandbox import make_jpeg

NOT_MODIFIED = (
    "Message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)


@pytest.fixture
def alice(sim):
    return sim.user("张三", username="zhangsan", started=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": ""}, "Message text is empty"),
        ({"text": "   \n "}, "Message text is empty"),
        ({"text": "<b></b>", "parse_mode": ParseMode.HTML}, "Message text is empty"),
        ({"text": "办" * 4097}, "Message is too long"),
        # 2049 emoji are 4098 UTF-16 code units although Python counts 2049 characters.
        ({"text": "👍" * 2049}, "Message is too long"),
        (
            {"text": "a < b", "parse_mode": ParseMode.HTML},
            'Can\'t parse entities: unsupported start tag "" at byte offset 2',
        ),
        (
            {"text": "<b>未闭合", "parse_mode": ParseMode.HTML},
            "Can't parse entities: can't find end tag corresponding to start tag \"b\"",
        ),
        ({"text": "x", "parse_mode": "BBCode"}, "Unsupported parse_mode"),
        (
            {
                "text": "x",
                "reply_markup": InlineKeyboardMarkup(
                    [[InlineKeyboardButton("签收", callback_data="x" * 65)]]
                ),
            },
            "Button_data_invalid",
        ),
    ],
)
async def test_send_message_validation(bot, alice, sim, kwargs, message):
    with pytest.raises(BadRequest) as caught:
        await bot.send_message(alice.id, **kwargs)
    # PTB drops "Bad Request: " and capitalises, so compare with what the bot will see.
    assert caught.value.message == message
    assert sim.sent(alice) == []
    assert sim.requests[-1].description.startswith("Bad Request: ")


async def test_raw_descriptions_are_telegrams(bot, alice, sim):
    with pytest.raises(BadRequest):
        await bot.send_message(alice.id, "<p>x</p>", parse_mode=ParseMode.HTML)
    assert sim.requests[-1].description == (
        'Bad Request: can\'t parse entities: Unsupported start tag "p" at byte offset 0'
    )
    with pytest.raises(BadRequest):
        await bot.send_message(
            alice.id,
            "x",
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("a", callback_data="é" * 33)]]
            ),
        )
    assert sim.requests[-1].description == "Bad Request: BUTTON_DATA_INVALID"


async def test_limits_are_inclusive(bot, alice, sim):
    await bot.send_message(alice.id, "办" * 4096)
    await bot.send_message(alice.id, "👍" * 2048)
    await bot.send_message(alice.id, "<b>" + "办" * 4096 + "</b>", parse_mode=ParseMode.HTML)
    await bot.send_message(
        alice.id,
        "x",
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("a", callback_data="x" * 64)]]),
    )
    assert len(sim.sent(alice)) == 4


async def test_good_html_is_recorded_plain_and_raw(bot, alice, sim):
    html = '<b>工单</b> #12 &lt;已受理&gt; <a href="https://12345.gov.cn/t/12">详情</a>'
    message = await bot.send_message(
        alice.id,
        html,
        parse_mode=ParseMode.HTML,
        disable_notification=True,
        link_preview_options=LinkPreviewOptions(is_disabled=True),
    )
    assert message.text == "工单 #12 <已受理> 详情"
    assert message.entities[0].type == "bold"
    assert message.entities[-1].url == "https://12345.gov.cn/t/12"
    sent = sim.last(alice)
    assert sent.text == "工单 #12 <已受理> 详情"
    assert sent.html == html
    assert sent.kind == "text"
    assert sent.disable_notification
    assert sent.link_preview_options == {"is_disabled": True}
    assert sent.message_id == message.message_id


async def test_keyboards_are_recorded(bot, alice, sim):
    inline = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton("签收", callback_data="sign:7")],
            [
                InlineKeyboardButton("退回", callback_data="back:7"),
                InlineKeyboardButton("网页", url="https://gov.cn"),
            ],
        ]
    )
    message = await bot.send_message(alice.id, "新工单", reply_markup=inline)
    assert message.reply_markup == inline
    sent = sim.last(alice)
    assert sent.buttons == [["签收"], ["退回", "网页"]]
    assert sent.button_data("退回") == "back:7"
    assert sent.button_data("网页") is None

    reply_kb = ReplyKeyboardMarkup([[KeyboardButton("分享位置", request_location=True), "取消"]])
    message = await bot.send_message(alice.id, "请选择", reply_markup=reply_kb)
    # Telegram never echoes reply keyboards back in the Message.
    assert message.reply_markup is None
    assert sim.last(alice).buttons == [["分享位置", "取消"]]
    await bot.send_message(alice.id, "好", reply_markup=ReplyKeyboardRemove())
    await bot.send_message(alice.id, "请回复", reply_markup=ForceReply())
    assert sim.last(alice).reply_markup == {"force_reply": True}

    with pytest.raises(BadRequest, match="text buttons are unallowed in the inline keyboard"):
        await bot.send_message(
            alice.id, "x", reply_markup={"inline_keyboard": [[{"text": "只有文字"}]]}
        )


async def test_replies_and_reply_parameters(bot, alice, sim):
    incoming = await alice.send("我要投诉")
    message = await bot.send_message(
        alice.id, "已收到", reply_parameters=ReplyParameters(incoming.message_id)
    )
    assert message.reply_to_message.text == "我要投诉"
    assert sim.last(alice).reply_to == incoming.message_id
    legacy = await bot.send_message(alice.id, "再次确认", reply_to_message_id=incoming.message_id)
    assert legacy.reply_to_message.message_id == incoming.message_id
    with pytest.raises(BadRequest, match="Message to be replied not found"):
        await bot.send_message(alice.id, "x", reply_parameters=ReplyParameters(999_999))
    ok = await bot.send_message(
        alice.id, "x", reply_parameters=ReplyParameters(999_999, allow_sending_without_reply=True)
    )
    assert ok.reply_to_message is None


async def test_edits_are_reflected_and_checked(bot, alice, sim):
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("签收", callback_data="sign")]])
    message = await bot.send_message(
        alice.id, "<b>待签收</b>", parse_mode=ParseMode.HTML, reply_markup=keyboard
    )
    with pytest.raises(BadRequest) as caught:
        await bot.edit_message_text(
            "<strong>待签收</strong>",
            chat_id=alice.id,
            message_id=message.message_id,
            parse_mode=ParseMode.HTML,
            reply_markup=keyboard,
        )
    assert caught.value.message == NOT_MODIFIED

    edited = await bot.edit_message_text("已签收", chat_id=alice.id, message_id=message.message_id)
    assert edited.edit_date is not None
    sent = sim.last(alice)
    assert sent.text == "已签收"
    # Omitting reply_markup in an edit removes the keyboard, as on Telegram.
    assert sent.buttons == []
    assert [e.text for e in sent.edits] == ["待签收"]
    assert sent.edits[0].reply_markup == keyboard.to_dict()

    await bot.edit_message_reply_markup(alice.id, message.message_id, reply_markup=keyboard)
    assert sim.last(alice).buttons == [["签收"]]
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_reply_markup(alice.id, message.message_id, reply_markup=keyboard)

    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", chat_id=alice.id, message_id=424242)
    theirs = await alice.send("我的消息")
    with pytest.raises(BadRequest, match="Message can't be edited"):
        await bot.edit_message_text("x", chat_id=alice.id, message_id=theirs.message_id)


async def test_caption_rules(bot, alice, sim):
    photo = await bot.send_photo(alice.id, make_jpeg(640, 480), caption="现场照片")
    with pytest.raises(BadRequest, match="There is no text in the message to edit"):
        await bot.edit_message_text("x", chat_id=alice.id, message_id=photo.message_id)
    await bot.edit_message_caption(
        alice.id, photo.message_id, caption="<i>已处理</i>", parse_mode="HTML"
    )
    assert sim.last(alice).text == "已处理"
    assert sim.last(alice).html == "<i>已处理</i>"
    text = await bot.send_message(alice.id, "文字")
    with pytest.raises(BadRequest, match="There is no caption in the message to edit"):
        await bot.edit_message_caption(alice.id, text.message_id, caption="x")
    with pytest.raises(BadRequest, match="Message caption is too long"):
        await bot.send_photo(alice.id, make_jpeg(10, 10), caption="长" * 1025)


async def test_delete(bot, alice, sim):
    message = await bot.send_message(alice.id, "临时")
    assert await bot.delete_message(alice.id, message.message_id)
    assert sim.sent(alice) == []
    assert sim.sent(alice, include_deleted=True)[0].deleted
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(alice.id, message.message_id)
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", chat_id=alice.id, message_id=message.message_id)


async def test_document_upload_round_trips_through_get_file(bot, alice, sim):
    data = "办件回执\n".encode() * 100
    message = await bot.send_document(alice.id, data, filename="回执.txt", caption="回执")
    assert message.document.file_name == "回执.txt"
    assert message.document.mime_type == "text/plain"
    sent = sim.last(alice)
    assert (sent.kind, sent.document_name, sent.document_bytes) == ("document", "回执.txt", data)
    file = await bot.get_file(message.document.file_id)
    assert file.file_path.startswith(sim.file_base_url)
    assert bytes(await file.download_as_bytearray()) == data
    # The file_id can be sent again without uploading.
    again = await bot.send_document(alice.id, message.document.file_id)
    assert again.document.file_unique_id == message.document.file_unique_id
    with pytest.raises(BadRequest, match="Wrong file identifier/http url specified"):
        await bot.send_document(alice.id, "no-such-file-id")
    with pytest.raises(BadRequest, match="File must be non-empty"):
        await bot.send_document(alice.id, b"", filename="empty.txt")


async def test_photo_upload_gets_sizes_and_downloads(bot, alice, sim):
    jpeg = make_jpeg(1600, 1200, "现场")
    message = await bot.send_photo(alice.id, jpeg)
    sizes = [(p.width, p.height) for p in message.photo]
    assert sizes == [(90, 68), (320, 240), (800, 600), (1280, 960), (1600, 1200)]
    largest = await (await bot.get_file(message.photo[-1].file_id)).download_as_bytearray()
    assert bytes(largest) == jpeg
    assert sim.last(alice).photo_bytes == jpeg
    with pytest.raises(BadRequest, match="Image_process_failed"):
        await bot.send_photo(alice.id, b"definitely not an image")


async def test_people_send_files_the_bot_can_download(bot, alice, sim):
    photo = await alice.send_photo(caption="路面塌陷")
    document = await alice.send_document(
        name="材料.pdf", data=b"%PDF-1.7 test", mime="application/pdf"
    )
    updates = await bot.get_updates()
    assert updates[0].message.caption == "路面塌陷"
    sizes = updates[0].message.photo
    assert (sizes[-1].width, sizes[-1].height) == (1280, 960)
    small = await (await bot.get_file(sizes[0].file_id)).download_as_bytearray()
    assert bytes(small[:2]) == b"\xff\xd8"
    doc = updates[1].message.document
    assert doc.file_name == "材料.pdf" and doc.mime_type == "application/pdf"
    assert (
        bytes(await (await bot.get_file(doc.file_id)).download_as_bytearray()) == b"%PDF-1.7 test"
    )
    assert photo.delivered and document.delivered


async def test_media_group_and_location(bot, alice, sim):
    messages = await bot.send_media_group(
        alice.id,
        [InputMediaPhoto(make_jpeg(320, 240), caption="一"), InputMediaPhoto(make_jpeg(320, 240))],
    )
    assert len(messages) == 2
    assert messages[0].media_group_id == messages[1].media_group_id is not None
    assert [m.kind for m in sim.sent(alice)] == ["media_group", "media_group"]
    assert sim.sent(alice)[0].media_type == "photo"
    with pytest.raises(BadRequest, match="Document can't be mixed with other media types"):
        await bot.send_media_group(
            alice.id,
            [InputMediaPhoto(make_jpeg(8, 8)), InputMediaDocument(b"x", filename="a.txt")],
        )
    await bot.send_location(alice.id, 31.2304, 121.4737)
    assert sim.last(alice).kind == "location"
    assert sim.last(alice).location == (31.2304, 121.4737)


async def test_copy_and_forward(bot, alice, sim):
    bob = sim.user("李四", started=True)
    incoming = await alice.send_document(name="证明.pdf", data=b"%PDF proof")
    copied = await bot.copy_message(bob.id, alice.id, incoming.message_id, caption="转交")
    sent = sim.last(bob)
    assert sent.message_id == copied.message_id
    assert (sent.kind, sent.document_name, sent.document_bytes, sent.text) == (
        "document",
        "证明.pdf",
        b"%PDF proof",
        "转交",
    )
    forwarded = await bot.forward_message(bob.id, alice.id, incoming.message_id)
    assert forwarded.forward_origin.sender_user.id == alice.id
    with pytest.raises(BadRequest, match="Message to copy not found"):
        await bot.copy_message(bob.id, alice.id, 999_999)


async def test_access_errors(bot, sim):
    alice = sim.user("张三", started=True)
    stranger = sim.user("王五")
    with pytest.raises(Forbidden, match="bot can't initiate conversation with a user"):
        await bot.send_message(stranger.id, "你好")
    sim.block(alice)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(alice.id, "你好")
    sim.unblock(alice)
    await bot.send_message(alice.id, "欢迎回来")
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(-100999, "x")

    group = sim.group("住建局办件群", members=[alice])
    supergroup = sim.supergroup("区政务群", members=[alice])
    sim.kick_bot(group)
    sim.kick_bot(supergroup)
    with pytest.raises(Forbidden, match="bot was kicked from the group chat"):
        await bot.send_message(group.id, "x")
    with pytest.raises(Forbidden, match="bot was kicked from the supergroup chat"):
        await bot.send_message(supergroup.id, "x")
    updates = await bot.get_updates()
    kinds = [(u.my_chat_member.new_chat_member.status, u.my_chat_member.chat.id) for u in updates]
    assert kinds == [
        ("kicked", alice.id),
        ("member", alice.id),
        ("left", group.id),
        ("kicked", supergroup.id),
    ]


async def test_migrated_group(bot, sim):
    alice = sim.user("张三", started=True)
    group = sim.group("住建局办件群", members=[alice])
    await bot.send_message(group.id, "旧群")
    supergroup = await sim.migrate_group(group)
    assert supergroup.type == "supergroup" and str(supergroup.id).startswith("-100")
    with pytest.raises(ChatMigrated) as caught:
        await bot.send_message(group.id, "还在旧群吗")
    assert caught.value.new_chat_id == supergroup.id
    assert (
        sim.requests[-1].description == "Bad Request: group chat was upgraded to a supergroup chat"
    )
    await bot.send_message(supergroup.id, "新群")
    assert [m.text for m in sim.sent(supergroup)] == ["新群"]
    updates = await bot.get_updates()
    assert updates[0].message.migrate_to_chat_id == supergroup.id
    assert updates[1].message.migrate_from_chat_id == group.id
    assert updates[1].message.chat.type == "supergroup"
    # Supergroups number their own messages.
    assert sim.last(supergroup).message_id == 2


async def test_chat_info_and_members(bot, sim):
    alice = sim.user("张三", username="zhangsan", started=True)
    bob = sim.user("李四")
    group = sim.group("住建局办件群", members=[alice, bob], bot_admin=True)
    chat = await bot.get_chat(group.id)
    assert (chat.type, chat.title) == ("group", "住建局办件群")
    assert (await bot.get_chat(alice.id)).username == "zhangsan"
    assert (await bot.get_chat_member(group.id, alice.id)).status == "creator"
    assert (await bot.get_chat_member(group.id, bob.id)).status == "member"
    assert (await bot.get_chat_member(group.id, sim.bot_id)).status == "administrator"
    admins = await bot.get_chat_administrators(group.id)
    assert [a.user.id for a in admins] == [alice.id, sim.bot_id]
    with pytest.raises(BadRequest, match="There are no administrators in the private chat"):
        await bot.get_chat_administrators(alice.id)
    assert await bot.send_chat_action(alice.id, "typing")
    message = await bot.send_message(alice.id, "x")
    assert await bot.set_message_reaction(alice.id, message.message_id, "👍")
    assert await bot.leave_chat(group.id)
    with pytest.raises(Forbidden, match="bot is not a member of the group chat"):
        await bot.send_message(group.id, "x")
    assert await bot.close() and await bot.log_out()


async def test_every_kind_of_incoming_message_parses_in_ptb(bot, sim):
    alice = sim.user("张三", last_name="丰", started=True)
    group = sim.supergroup("区政务群", members=[alice], username="qu_zhengwu", bot_admin=True)
    await alice.send_location(31.23, 121.47)
    await alice.send_contact()
    await alice.send_sticker()
    await alice.send_video(caption="视频")
    await alice.send_voice()
    await alice.send_animation()
    album = await alice.send_media_group(3, caption="三张")
    await alice.send("群里说话", chat=group)
    updates = await bot.get_updates()
    messages = [u.message for u in updates]
    assert messages[0].location.latitude == 31.23
    assert messages[1].contact.user_id == alice.id
    assert messages[1].contact.last_name == "丰"
    assert messages[2].sticker.emoji == "👍"
    assert messages[3].video.mime_type == "video/mp4" and messages[3].caption == "视频"
    assert messages[4].voice.duration == dtm.timedelta(seconds=3)
    assert messages[5].animation is not None and messages[5].document is not None
    assert len({m.media_group_id for m in messages[6:9]}) == 1
    assert messages[6].caption == "三张" and len(album) == 3
    # The bot is an admin of the supergroup, so it sees plain chatter there.
    assert messages[9].chat.username == "qu_zhengwu"
    sent = await bot.send_message("@qu_zhengwu", "按用户名发送")
    assert sent.chat.id == group.id


async def test_markdown_v2_from_the_bot(bot, sim):
    alice = sim.user("张三", started=True)
    with pytest.raises(BadRequest) as caught:
        await bot.send_message(alice.id, "办结率 98.5%", parse_mode=ParseMode.MARKDOWN_V2)
    assert caught.value.message == (
        "Can't parse entities: character '.' is reserved and must be escaped with the "
        "preceding '\\'"
    )
    ok = await bot.send_message(alice.id, "*办结率* 98\\.5%", parse_mode=ParseMode.MARKDOWN_V2)
    assert ok.text == "办结率 98.5%" and ok.entities[0].type == "bold"


async def test_single_item_media_group_is_an_ordinary_message(bot, sim):
    alice = sim.user("张三", started=True)
    (message,) = await bot.send_media_group(alice.id, [InputMediaPhoto(make_jpeg(64, 48))])
    assert message.media_group_id is None
    assert sim.last(alice).kind == "photo"


async def test_deleting_others_messages_needs_admin_rights(bot, sim):
    alice = sim.user("张三", started=True)
    group = sim.group("住建局办件群", members=[alice])
    incoming = await alice.send("/start", chat=group)
    with pytest.raises(BadRequest, match="Message can't be deleted"):
        await bot.delete_message(group.id, incoming.message_id)
    private = await alice.send("私聊")
    assert await bot.delete_message(alice.id, private.message_id)
