// Test double of the .NET access-control classes gmsa-host.ps1 uses on a folder, for Linux, where
// the real ones throw PlatformNotSupportedException: SecurityIdentifier and NTAccount
// (System.Security.Principal), FileSystemAccessRule and DirectorySecurity
// (System.Security.AccessControl), with the same member names, and the real enums
// (FileSystemRights, InheritanceFlags, PropagationFlags, AccessControlType, AccessControlSections,
// AccessControlModification). The GmsaWindowsDoubles module hands them out through its New-Object
// and reads and writes them from the test host's state file (Set-Acl). Each behaviour is the
// documented one:
//   - FileSystemAccessRule: an Allow rule always carries Synchronize; a Deny rule drops it unless
//     it is FullControl; propagation flags without inheritance flags are refused
//     (FileSystemAccessRule constructor, "Remarks").
//   - DirectorySecurity.AddAccessRule / ModifyAccessRule(Add): a rule whose identity, type and
//     inheritance match an explicit entry widens that entry; otherwise a new entry goes into
//     canonical order (explicit deny, explicit allow, then inherited). SetAccessRule /
//     ModifyAccessRule(Set) replaces the explicit entries of that identity and type.
//     RemoveAccessRuleSpecific removes the one entry that matches exactly. Inherited entries are
//     never changed through these methods (ObjectSecurity.ModifyAccessRule, CommonAcl).
//   - GetAccessRules(includeExplicit, includeInherited, typeof(SecurityIdentifier)) lists entries
//     in ACL order, IsInherited set for inherited ones (CommonObjectSecurity.GetAccessRules).
//   - An NTAccount that does not translate to a SID is refused with IdentityNotMappedException,
//     "Some or all identity references could not be translated." (IdentityReference.Translate).
//   - A DirectorySecurity read with AccessControlSections.Access has no owner (GetOwner returns
//     null), so writing it back cannot change the owner.
using System;
using System.Collections.Generic;
using System.Security.AccessControl;
using System.Text.RegularExpressions;

namespace GmsaDoubles
{
    public abstract class IdentityReference
    {
        public abstract string Value { get; }
        public override string ToString() { return Value; }
        public override bool Equals(object o) { IdentityReference r = o as IdentityReference; return r != null && r.GetType() == GetType() && string.Equals(r.Value, Value, StringComparison.OrdinalIgnoreCase); }
        public override int GetHashCode() { return Value.ToUpperInvariant().GetHashCode(); }
    }

    public sealed class SecurityIdentifier : IdentityReference
    {
        private readonly string value;
        public SecurityIdentifier(string sddlForm)
        {
            // As ConvertStringSidToSid: "S-1-" then the authority and sub-authorities.
            if (sddlForm == null || !Regex.IsMatch(sddlForm, "^[Ss]-1-[0-9]+(-[0-9]+){0,15}$"))
                throw new ArgumentException("Value was invalid.", "sddlForm");
            value = sddlForm.ToUpperInvariant();
        }
        public override string Value { get { return value; } }
    }

    public sealed class NTAccount : IdentityReference
    {
        private readonly string value;
        public NTAccount(string name) { value = name; }
        public override string Value { get { return value; } }
    }

    public sealed class IdentityNotMappedException : SystemException
    {
        public IdentityNotMappedException() : base("Some or all identity references could not be translated.") { }
    }

    public sealed class FileSystemAccessRule
    {
        public IdentityReference IdentityReference { get; private set; }
        public FileSystemRights FileSystemRights { get; private set; }
        public InheritanceFlags InheritanceFlags { get; private set; }
        public PropagationFlags PropagationFlags { get; private set; }
        public AccessControlType AccessControlType { get; private set; }
        public bool IsInherited { get; private set; }

        public FileSystemAccessRule(IdentityReference identity, FileSystemRights rights, InheritanceFlags inheritanceFlags, PropagationFlags propagationFlags, AccessControlType type)
            : this(identity, (int)rights, false, inheritanceFlags, propagationFlags, type) { }

        internal FileSystemAccessRule(IdentityReference identity, int mask, bool isInherited, InheritanceFlags inheritanceFlags, PropagationFlags propagationFlags, AccessControlType type)
        {
            if (identity == null) throw new ArgumentNullException("identity");
            if (inheritanceFlags == InheritanceFlags.None && propagationFlags != PropagationFlags.None)
                throw new ArgumentException("Propagation flags without inheritance flags are not valid.", "propagationFlags");
            if (type == AccessControlType.Allow) mask |= (int)FileSystemRights.Synchronize;
            else if (mask != (int)FileSystemRights.FullControl) mask &= ~(int)FileSystemRights.Synchronize;
            IdentityReference = identity;
            FileSystemRights = (FileSystemRights)mask;
            InheritanceFlags = inheritanceFlags;
            PropagationFlags = propagationFlags;
            AccessControlType = type;
            IsInherited = isInherited;
        }
    }

    /// <summary>One access-control entry as the state file keeps it.</summary>
    public sealed class AceData
    {
        public string Sid;
        public string Type;
        public int Rights;
        public string Inheritance;
        public string Propagation;
        public bool Inherited;
    }

    public sealed class DirectorySecurity
    {
        private readonly List<FileSystemAccessRule> explicitRules = new List<FileSystemAccessRule>();
        private readonly List<FileSystemAccessRule> inheritedRules = new List<FileSystemAccessRule>();
        private readonly Func<string, string> translate;

        public string Path { get; private set; }
        public bool AreAccessRulesProtected { get; private set; }
        public bool AccessRulesModified { get; private set; }
        public AccessControlSections Sections { get; private set; }
        private readonly string owner;

        /// <param name="translate">Name to SID (null or empty when the name does not resolve), as LookupAccountName.</param>
        public DirectorySecurity(string path, AccessControlSections sections, string ownerSid, bool isProtected, AceData[] aces, Func<string, string> translate)
        {
            Path = path;
            Sections = sections;
            owner = (sections & AccessControlSections.Owner) != 0 ? ownerSid : null;
            AreAccessRulesProtected = isProtected;
            this.translate = translate;
            foreach (AceData a in aces)
            {
                FileSystemAccessRule r = new FileSystemAccessRule(new SecurityIdentifier(a.Sid), a.Rights, a.Inherited,
                    (InheritanceFlags)Enum.Parse(typeof(InheritanceFlags), a.Inheritance),
                    (PropagationFlags)Enum.Parse(typeof(PropagationFlags), a.Propagation),
                    (AccessControlType)Enum.Parse(typeof(AccessControlType), a.Type));
                if (a.Inherited) inheritedRules.Add(r); else explicitRules.Add(r);
            }
        }

        public SecurityIdentifier GetOwner(Type targetType) { return owner == null ? null : new SecurityIdentifier(owner); }

        public List<FileSystemAccessRule> GetAccessRules(bool includeExplicit, bool includeInherited, Type targetType)
        {
            if (targetType == null || targetType.FullName != "System.Security.Principal.SecurityIdentifier")
                throw new ArgumentException("the double translates to SecurityIdentifier only", "targetType");
            List<FileSystemAccessRule> list = new List<FileSystemAccessRule>();
            if (includeExplicit) list.AddRange(explicitRules);
            if (includeInherited) list.AddRange(inheritedRules);
            return list;
        }

        /// <summary>The explicit entries, for Set-Acl (inherited ones come from the parent).</summary>
        public AceData[] ExplicitEntries()
        {
            List<AceData> list = new List<AceData>();
            foreach (FileSystemAccessRule r in explicitRules)
                list.Add(new AceData { Sid = r.IdentityReference.Value, Type = r.AccessControlType.ToString(), Rights = (int)r.FileSystemRights, Inheritance = r.InheritanceFlags.ToString(), Propagation = r.PropagationFlags.ToString(), Inherited = false });
            return list.ToArray();
        }

        private FileSystemAccessRule Mapped(FileSystemAccessRule rule)
        {
            if (rule.IdentityReference is SecurityIdentifier) return rule;
            string sid = translate(rule.IdentityReference.Value);
            if (string.IsNullOrEmpty(sid)) throw new IdentityNotMappedException();
            return new FileSystemAccessRule(new SecurityIdentifier(sid), (int)rule.FileSystemRights, false, rule.InheritanceFlags, rule.PropagationFlags, rule.AccessControlType);
        }

        private static bool SameSlot(FileSystemAccessRule a, FileSystemAccessRule b)
        {
            return a.IdentityReference.Equals(b.IdentityReference) && a.AccessControlType == b.AccessControlType
                && a.InheritanceFlags == b.InheritanceFlags && a.PropagationFlags == b.PropagationFlags;
        }

        private void Insert(FileSystemAccessRule rule)
        {
            // Canonical order: explicit deny entries before explicit allow entries.
            int at = explicitRules.Count;
            if (rule.AccessControlType == AccessControlType.Deny)
            {
                at = 0;
                while (at < explicitRules.Count && explicitRules[at].AccessControlType == AccessControlType.Deny) at++;
            }
            explicitRules.Insert(at, rule);
        }

        public void AddAccessRule(FileSystemAccessRule rule)
        {
            rule = Mapped(rule);
            AccessRulesModified = true;
            for (int i = 0; i < explicitRules.Count; i++)
            {
                FileSystemAccessRule e = explicitRules[i];
                if (!SameSlot(e, rule)) continue;
                explicitRules[i] = new FileSystemAccessRule(e.IdentityReference, (int)e.FileSystemRights | (int)rule.FileSystemRights, false, e.InheritanceFlags, e.PropagationFlags, e.AccessControlType);
                return;
            }
            Insert(rule);
        }

        public void SetAccessRule(FileSystemAccessRule rule)
        {
            rule = Mapped(rule);
            AccessRulesModified = true;
            explicitRules.RemoveAll(e => e.IdentityReference.Equals(rule.IdentityReference) && e.AccessControlType == rule.AccessControlType);
            Insert(rule);
        }

        public void RemoveAccessRuleSpecific(FileSystemAccessRule rule)
        {
            rule = Mapped(rule);
            int removed = explicitRules.RemoveAll(e => SameSlot(e, rule) && e.FileSystemRights == rule.FileSystemRights);
            if (removed > 0) AccessRulesModified = true;
        }

        /// <summary>Explicit deny entries before explicit allow entries (inherited ones follow them all).</summary>
        public bool AreAccessRulesCanonical
        {
            get
            {
                bool allowSeen = false;
                foreach (FileSystemAccessRule r in explicitRules)
                {
                    if (r.AccessControlType == AccessControlType.Allow) allowSeen = true;
                    else if (allowSeen) return false;
                }
                return true;
            }
        }

        public bool ModifyAccessRule(AccessControlModification modification, FileSystemAccessRule rule, out bool modified)
        {
            // As CommonAcl: a DACL out of canonical order is read, never modified.
            if (!AreAccessRulesCanonical)
                throw new InvalidOperationException("This access control list is not in canonical form and therefore cannot be modified.");
            switch (modification)
            {
                case AccessControlModification.Add: AddAccessRule(rule); break;
                case AccessControlModification.Set: SetAccessRule(rule); break;
                case AccessControlModification.RemoveSpecific: RemoveAccessRuleSpecific(rule); break;
                default: throw new NotSupportedException("the double models Add, Set and RemoveSpecific");
            }
            modified = true;
            return true;
        }
    }
}
